//! What a MySQL or MariaDB server (or anything on its port) sends first on
//! connect: `dockhand::check::mysql::judge_mysql`. Properties: never panics;
//! the verdict is one printable line of bounded length; up only for a packet
//! with sequence number 0 whose payload starts with protocol byte 10, and
//! an ERR packet (0xff) is never up.
#![no_main]

use dockhand::check::mysql::judge_mysql;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = judge_mysql(data);
    let text = match &verdict {
        Ok(s) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if verdict.is_ok() {
        assert!(data.len() > 5 && data[3] == 0 && data[4] == 10, "{data:?} judged up");
    }
});
