#![forbid(unsafe_code)]

fn main() {
    dockhand::run::main("runas", runas::run)
}
