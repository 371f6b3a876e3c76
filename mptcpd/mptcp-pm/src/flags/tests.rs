//! The flag sets' values, text form and set operations.

use super::{EndpointFlags, EventFlags, FlagsError};

/// Every flag that can be asked for, with its word.
const REQUESTABLE: [(EndpointFlags, &str); 5] = [
    (EndpointFlags::SIGNAL, "signal"),
    (EndpointFlags::SUBFLOW, "subflow"),
    (EndpointFlags::BACKUP, "backup"),
    (EndpointFlags::FULLMESH, "fullmesh"),
    (EndpointFlags::LAMINAR, "laminar"),
];

#[test]
fn the_bits_are_the_uapi_values() {
    let all = [
        (EndpointFlags::SIGNAL, 0x01),
        (EndpointFlags::SUBFLOW, 0x02),
        (EndpointFlags::BACKUP, 0x04),
        (EndpointFlags::FULLMESH, 0x08),
        (EndpointFlags::IMPLICIT, 0x10),
        (EndpointFlags::LAMINAR, 0x20),
    ];
    for (flag, bits) in all {
        assert_eq!(flag.bits(), bits);
    }
    assert_eq!(EndpointFlags::all().bits(), 0x3f);
    assert_eq!(EventFlags::DENY_JOIN_ID0.bits(), 1);
    assert_eq!(EventFlags::SERVER_SIDE.bits(), 2);
}

#[test]
fn every_flag_prints_and_parses_as_its_word() {
    for (flag, word) in REQUESTABLE {
        assert_eq!(flag.to_string(), word);
        assert_eq!(word.parse(), Ok(flag), "{word}");
    }
    assert_eq!(EndpointFlags::IMPLICIT.to_string(), "implicit");
    assert_eq!(EndpointFlags::empty().to_string(), "");
    assert_eq!("".parse(), Ok(EndpointFlags::empty()));
}

#[test]
fn every_combination_round_trips() {
    for bits in 0..=EndpointFlags::all().bits() {
        let flags = EndpointFlags::from_bits_retain(bits);
        let parsed = flags.to_string().parse::<EndpointFlags>();
        if flags.contains(EndpointFlags::IMPLICIT) {
            assert_eq!(parsed, Err(FlagsError::Implicit), "{flags}");
        } else if flags.contains(EndpointFlags::SIGNAL | EndpointFlags::FULLMESH) {
            assert_eq!(parsed, Err(FlagsError::SignalWithFullmesh), "{flags}");
        } else {
            assert_eq!(parsed, Ok(flags), "{flags}");
        }
    }
    assert_eq!(
        (EndpointFlags::SUBFLOW | EndpointFlags::BACKUP).to_string(),
        "subflow,backup"
    );
    assert_eq!(
        "fullmesh, backup,subflow".parse(),
        Ok(EndpointFlags::FULLMESH | EndpointFlags::BACKUP | EndpointFlags::SUBFLOW)
    );
}

#[test]
fn the_text_form_reads_back_every_value() {
    for bits in (0..=0x7f).chain([0x102, 0x8000_0011, u32::MAX]) {
        let flags = EndpointFlags::from_bits_retain(bits);
        assert_eq!(
            EndpointFlags::from_text(&flags.to_string()),
            Ok(flags),
            "{flags}"
        );
    }
    assert!(
        "subflow,0x100".parse::<EndpointFlags>().is_err(),
        "not a request"
    );
    assert!(EndpointFlags::from_text("subflow,0xzz").is_err());
}

#[test]
fn errors_are_one_line_naming_the_word_and_the_valid_ones() {
    let unknown = "subflow,bakup".parse::<EndpointFlags>().unwrap_err();
    assert_eq!(
        unknown,
        FlagsError::Unknown {
            word: "bakup".to_owned()
        }
    );
    assert_eq!(
        unknown.to_string(),
        "unknown address flag \"bakup\" (expected a comma-separated list of signal, subflow, \
         backup, fullmesh, laminar)"
    );
    let empty = "subflow,".parse::<EndpointFlags>().unwrap_err();
    assert_eq!(
        empty,
        FlagsError::Empty {
            list: "subflow,".to_owned()
        }
    );
    for err in [
        unknown,
        empty,
        FlagsError::Implicit,
        FlagsError::SignalWithFullmesh,
    ] {
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
    }
    assert!(FlagsError::Implicit.to_string().contains("implicit"));
    // Case matters, as in the C daemon.
    assert!("SUBFLOW".parse::<EndpointFlags>().is_err());
    assert!("Subflow".parse::<EndpointFlags>().is_err());
}

#[test]
fn set_operations_and_unknown_bits() {
    let f = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    assert!(f.contains(EndpointFlags::BACKUP));
    assert!(!f.contains(EndpointFlags::SIGNAL | EndpointFlags::BACKUP));
    assert_eq!(f - EndpointFlags::BACKUP, EndpointFlags::SUBFLOW);
    assert_eq!(f & EndpointFlags::BACKUP, EndpointFlags::BACKUP);
    let odd = EndpointFlags::from_bits_retain(0x102);
    assert_eq!(odd.bits(), 0x102);
    assert_eq!(odd.to_string(), "subflow,0x100");
    assert_eq!(
        format!("{:?}", EventFlags::SERVER_SIDE),
        "EventFlags(0x2: server_side)"
    );
    assert_eq!(
        (EventFlags::DENY_JOIN_ID0 | EventFlags::SERVER_SIDE).to_string(),
        "deny_join_id0,server_side"
    );
    assert_eq!(EventFlags::from_bits_retain(0x8).to_string(), "0x8");
}
