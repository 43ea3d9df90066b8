#![forbid(unsafe_code)]

fn main() {
    dockhand::run::main("ready", ready::run)
}
