#![forbid(unsafe_code)]

fn main() {
    dockhand::run::main("healthcheck", healthcheck::run)
}
