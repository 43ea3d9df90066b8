#![forbid(unsafe_code)]

/// ldcheck reads many files and frees what it read of each: reuse freed
/// blocks instead of letting musl's malloc unmap and remap them per file.
#[global_allocator]
static ALLOC: dockhand::sys::alloc::PerThreadPools = dockhand::sys::alloc::PerThreadPools::new();

fn main() {
    dockhand::run::main("ldcheck", ldcheck::run)
}
