//! ready: see the README section of the same name.
#![forbid(unsafe_code)]

use dockhand::Error;

/// Run ready with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let _ = args;
    Err(Error::failed("not built yet"))
}
