//! The golden corpus (`golden_normalisation.tsv`): 250 customer-information values with the normalised form
//! Meta's documented rules give them, written by hand from those rules. Every case must reproduce exactly:
//! the value sent to Meta is the SHA-256 of the expected form, the refused are refused, digests and the
//! keys Meta never hashes pass as they are.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use adloop_capi_events::user_data::{DateOrder, NormaliseSettings, Prepared, prepare};
use sha2::{Digest, Sha256};

const CORPUS: &str = include_str!("golden_normalisation.tsv");

fn source(name: &str) -> NormaliseSettings {
    let (calling_code, date_order) = match name {
        "us" => (Some("1"), DateOrder::MonthFirst),
        "uk" => (Some("44"), DateOrder::DayFirst),
        "bare" => (None, DateOrder::MonthFirst),
        other => panic!("unknown source {other:?} in the corpus"),
    };
    NormaliseSettings {
        default_calling_code: calling_code.map(str::to_owned),
        date_order,
        current_year: 2026,
    }
}

fn raw_input(field: &str) -> String {
    match field.strip_prefix("json:") {
        Some(json) => serde_json::from_str(json).unwrap(),
        None => field.to_owned(),
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn every_case_of_the_golden_corpus_reproduces_metas_rules() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (line_number, line) in CORPUS.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('\t').collect();
        let [key, source_name, input, expected, rule] = columns[..] else {
            panic!("line {}: five tab-separated columns expected", line_number + 1);
        };
        cases += 1;
        let outcome = prepare(key, &raw_input(input), &source(source_name));
        let as_expected = match (expected, &outcome) {
            ("!", Err(_)) => true,
            ("!", Ok(_)) => false,
            (sent_as_is, Ok(Prepared::Plain(value) | Prepared::Hashed(value))) if sent_as_is.starts_with('=') => {
                value == &sent_as_is[1..]
            }
            (normalised, Ok(Prepared::Hashed(digest))) => digest == &sha256_hex(normalised),
            _ => false,
        };
        if !as_expected {
            failures.push(format!(
                "line {}: {key} {input:?} ({rule}): expected {expected:?}, got {outcome:?}",
                line_number + 1
            ));
        }
    }
    assert!(
        cases >= 200,
        "the corpus holds {cases} cases; it should hold at least 200"
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
