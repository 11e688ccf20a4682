//! The Conversions API events adloop relays, as Meta defines them, as a pure library (no I/O): `event`
//! checks each event field by field (naming the event's index, the field and the rule), and `user_data`
//! normalises and hashes customer information by Meta's rules.

pub mod event;
pub mod user_data;
