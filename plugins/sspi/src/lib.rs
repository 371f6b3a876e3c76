//! `sspi` (work in progress).
