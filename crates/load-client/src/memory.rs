//! Resident memory of the services under load, sampled from `/proc/<pid>/status` (Linux).

use std::time::Duration;

/// Resident set size of a process in MiB, if it runs.
pub fn resident_mebibytes(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kibibytes: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kibibytes / 1024.0)
}

/// One service's samples over the run.
#[derive(Debug, Clone, Default)]
pub struct MemoryTrace {
    pub samples: Vec<f64>,
}

impl MemoryTrace {
    pub fn peak(&self) -> f64 {
        self.samples.iter().copied().fold(0.0, f64::max)
    }

    /// The mean of the first and of the last third of the samples: flat memory keeps them close.
    pub fn first_and_last_thirds(&self) -> (f64, f64) {
        let third = (self.samples.len() / 3).max(1);
        let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
        let last_start = self.samples.len().saturating_sub(third);
        (
            mean(&self.samples[..third.min(self.samples.len())]),
            mean(&self.samples[last_start..]),
        )
    }
}

/// Each process's resident memory every `every` until `stop` says so (one trace per pid, in order).
pub async fn sample_until_stopped(
    pids: Vec<u32>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<MemoryTrace> {
    let mut traces = vec![MemoryTrace::default(); pids.len()];
    loop {
        for (pid, trace) in pids.iter().zip(traces.iter_mut()) {
            if let Some(mebibytes) = resident_mebibytes(*pid) {
                trace.samples.push(mebibytes);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return traces,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_resident_memory() {
        assert!(resident_mebibytes(std::process::id()).is_some_and(|mebibytes| mebibytes > 0.0));
    }

    #[test]
    fn thirds_compare_the_start_with_the_end() {
        let trace = MemoryTrace {
            samples: vec![10.0, 10.0, 10.0, 20.0, 20.0, 20.0, 30.0, 30.0, 30.0],
        };
        assert_eq!(trace.first_and_last_thirds(), (10.0, 30.0));
        assert_eq!(trace.peak(), 30.0);
    }
}
