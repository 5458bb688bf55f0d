//! `incept train --profile`: profiles the first training steps of a run
//! (the whole first epoch unless a step count is given) and writes
//! `RUN/profile.json` and `RUN/profile.png`.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::report::profile::{PROFILE_JSON, PROFILE_PNG, ProfileReport};
use std::path::Path;

/// Which training steps to profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProfileSteps {
    #[default]
    Off,
    /// Every training step of the first epoch this invocation runs.
    FirstEpoch,
    /// The first N training steps (fewer when the epoch ends first).
    First(usize),
}

/// Rows of each printed table and bars of the chart.
const TOP: usize = 15;

/// A running profile of training steps; ends the session if dropped unfinished.
pub(crate) struct StepProfiler {
    gpu: Gpu,
    limit: Option<usize>,
    steps: usize,
}

impl StepProfiler {
    /// Starts a session unless `which` is `Off`.
    pub(crate) fn start(gpu: &Gpu, which: ProfileSteps) -> Result<Option<StepProfiler>> {
        let limit = match which {
            ProfileSteps::Off => return Ok(None),
            ProfileSteps::First(0) => return Err(Error::Invalid("--profile-steps 0: profile at least one step".into())),
            ProfileSteps::First(n) => Some(n),
            ProfileSteps::FirstEpoch => None,
        };
        gpu.start_profile()?;
        Ok(Some(StepProfiler { gpu: gpu.clone(), limit, steps: 0 }))
    }

    /// Counts a finished step; true when the profile has all its steps.
    pub(crate) fn step_done(&mut self) -> bool {
        self.steps += 1;
        self.limit.is_some_and(|n| self.steps >= n)
    }

    /// Ends the session, writes `run_dir/profile.json` and `profile.png`, and returns the printed tables.
    pub(crate) fn finish(self, run_dir: &Path) -> Result<String> {
        let profile = self.gpu.finish_profile()?;
        let report = ProfileReport::new(&profile, "training steps", self.gpu.name(), self.steps);
        let (json, png) = (run_dir.join(PROFILE_JSON), run_dir.join(PROFILE_PNG));
        report.save_json(&json)?;
        report.save_chart(&png, TOP)?;
        Ok(format!("{}\nwrote {} and {}", report.to_text(TOP), json.display(), png.display()))
    }
}

impl Drop for StepProfiler {
    fn drop(&mut self) {
        if self.gpu.is_profiling() {
            // Only after an error: the session ends, its results are not wanted.
            let _ = self.gpu.finish_profile();
        }
    }
}
