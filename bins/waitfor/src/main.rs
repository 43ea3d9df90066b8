#![forbid(unsafe_code)]

fn main() {
    dockhand::run::main("waitfor", waitfor::run)
}
