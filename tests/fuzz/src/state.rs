//! `state`: the state file's text (`mptcpd::plugins::state_file`), which the daemon reads at
//! start to adopt its endpoints. Checked: an error is one line; a file that parses formats to
//! text that parses back the same, and formatting is stable.

use mptcpd::plugins::state_file::StateFile;

/// The fuzz target.
///
/// # Panics
/// On a finding: a property that does not hold.
pub fn run(input: &[u8]) {
    // The daemon reads the file as UTF-8; anything else is an unreadable file.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    match StateFile::parse(text) {
        Ok(file) => {
            let formatted = file.format();
            let again = StateFile::parse(&formatted).unwrap_or_else(|e| {
                panic!("{file:?} formatted as\n{formatted}does not parse: {e}")
            });
            assert_eq!(again, file, "formatted as\n{formatted}");
            assert_eq!(again.format(), formatted);
        }
        Err(e) => {
            let message = e.to_string();
            assert_eq!(message.lines().count(), 1, "{text:?}: {message}");
        }
    }
}

/// The format's example, files with every kind of record and origin (version 3) or none
/// (version 2), and files from before the format had a version.
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    [
        "# mptcpd: endpoints this daemon added (state id address port flags ifindex)\n\
         version 2\nboot-id 0d5c2b0e-7a4b-4c3e-9d8e-3f1b2a4c5d6e\nnetns-inode 4026532296\n\
         netns-cookie 4101\nendpoint added 1 198.51.100.1 - subflow 3\n\
         endpoint adding 2 2001:db8::1 8080 signal,backup -\n",
        "version 2\nboot-id x\nnetns-inode 1\nnetns-cookie -\n\
         endpoint added 255 203.0.113.9 65535 subflow,signal,backup,fullmesh,implicit 4294967295\n\
         endpoint added 7 ::ffff:192.0.2.7 - 0x100,laminar 1\n\
         endpoint adding 3 fe80::1 - - 2\n",
        "version 2\nboot-id y\nnetns-inode 2\nnetns-cookie 3\n",
        "version 3\nboot-id z\nnetns-inode 4\nnetns-cookie -\n\
         endpoint added 1 198.51.100.1 - subflow 3 daemon\n\
         endpoint adding 2 2001:db8::1 8080 signal - operator\n",
        "version 1\nboot-id y\n",
        "# mptcpd: endpoints this daemon added (id address)\n1 192.0.2.1\n2 2001:db8::2\n",
        "",
    ]
    .iter()
    .map(|text| text.as_bytes().to_vec())
    .collect()
}
