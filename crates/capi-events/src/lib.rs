//! The Conversions API events adloop relays, as Meta defines them, as a pure library (no I/O): `user_data`
//! normalises and hashes customer information by Meta's rules.

pub mod user_data;
