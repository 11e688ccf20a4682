//! A plain-text report: one line per step, then a verdict.

use std::fmt::Write as _;

#[derive(Debug, Clone)]
pub struct StepOutcome {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl StepOutcome {
    pub fn passed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        StepOutcome {
            name: name.into(),
            passed: true,
            detail: detail.into(),
        }
    }

    pub fn failed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        StepOutcome {
            name: name.into(),
            passed: false,
            detail: detail.into(),
        }
    }
}

pub fn render_report(outcomes: &[StepOutcome]) -> String {
    let name_width = outcomes
        .iter()
        .map(|outcome| outcome.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::from("adloop run report\n");
    for outcome in outcomes {
        let mark = if outcome.passed { "ok  " } else { "FAIL" };
        let _ = writeln!(text, "  {mark} {:<name_width$}  {}", outcome.name, outcome.detail);
    }
    let failed_count = outcomes.iter().filter(|outcome| !outcome.passed).count();
    let _ = writeln!(text, "{} steps, {} failed", outcomes.len(), failed_count);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_counts_failures_and_aligns_names() {
        let report = render_report(&[
            StepOutcome::passed("a", "fine"),
            StepOutcome::failed("longer", "broken"),
        ]);
        assert!(report.contains("  ok   a       fine"), "{report}");
        assert!(report.contains("  FAIL longer  broken"), "{report}");
        assert!(report.ends_with("2 steps, 1 failed\n"), "{report}");
    }
}
