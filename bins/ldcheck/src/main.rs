#![forbid(unsafe_code)]

fn main() {
    dockhand::run::main("ldcheck", ldcheck::run)
}
