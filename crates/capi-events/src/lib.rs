//! The Conversions API events adloop relays, as Meta defines them, as a pure library (no I/O): `event`
//! checks each event field by field (naming the event's index, the field and the rule), and `user_data`
//! normalises and hashes customer information by Meta's rules; `friendly` rewrites adloop's own event shape
//! (plain customer field names, money in minor units) into Meta's.

pub mod event;
pub mod friendly;
pub mod user_data;
