//! Connection tokens stay out of the daemon's logs above debug level (C mptcpd #25: a token
//! lets whoever reads it act on the connection through the path manager).

use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    net::netns::NetNs,
    skip,
    sockets::{mptcp, sockopt},
};

#[test]
fn tokens_appear_only_in_debug_lines() {
    if !skip::require_root("tokens_appear_only_in_debug_lines") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-priv").unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug"])
        .args(["--notify-flags", "existing"])
        .args(["--addr-flags", "subflow"])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-priv"]);
    let mut daemon = Daemon::start(cmd).unwrap();
    let tokens = ns
        .run(|| {
            let listener = mptcp::listen("127.0.0.1:0".parse().unwrap()).unwrap();
            let client = mptcp::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            std::io::Write::write_all(&mut &client, b"x").unwrap();
            let mut byte = [0_u8; 1];
            std::io::Read::read_exact(&mut &server, &mut byte).unwrap();
            [
                sockopt::mptcp_info(&client).unwrap().token,
                sockopt::mptcp_info(&server).unwrap().token,
            ]
        })
        .unwrap();
    daemon.wait_for_log("mptcp: Established").unwrap();
    daemon.wait_for_log("mptcp: Closed").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let mut seen = false;
    for token in tokens {
        let spellings = [
            token.to_string(),
            format!("{token:x}"),
            format!("{token:#x}"),
            format!("{token:08x}"),
        ];
        for line in log.lines() {
            if spellings.iter().any(|s| contains_word(line, s)) {
                seen = true;
                assert!(
                    line.contains(" DEBUG ") || line.contains(" TRACE "),
                    "token {token} in a line above debug level: {line}"
                );
            }
        }
    }
    assert!(
        seen,
        "the debug lines name the tokens (the test sees them):\n{log}"
    );
}

/// Whether `word` is in `line` with no alphanumeric character either side.
fn contains_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}
