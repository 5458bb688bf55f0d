//! `incept report RUN [--out RUN/report.html]`: the run as one self-contained
//! HTML page (see `incept::report::run_report`). This module gathers what the
//! run directory holds; every file it reads is named in the errors, and the
//! page is written atomically, never over one of them.

use clap::Args;
use incept::error::{Error, Result};
use incept::io::atomic::check_writable;
use incept::io::output_paths::{Named, named, refuse_output_inside_inputs};
use incept::io::write_atomic;
use incept::report::curves::{PRECISION_RECALL_PNG, ROC_PNG};
use incept::report::evaluation::{METRICS_JSON, MetricsReport};
use incept::report::history::{HISTORY_JSON, History};
use incept::report::profile::{PROFILE_JSON, PROFILE_PNG, ProfileReport};
use incept::report::run_report::{REPORT_HTML, RunReport};
use incept::report::top_losses::TOP_LOSSES_PNG;
use incept::train::checkpoint::{self, LAST};
use incept::train::run_dir::{RUN_CONFIG, load_config};
use std::path::{Path, PathBuf};

use super::explain::PICTURE_SUFFIX;

/// The confusion matrix `incept evaluate` writes beside metrics.json by default.
const CONFUSION_PNG: &str = "confusion_matrix.png";
/// Grad-CAM pictures shown at most; the page says how many more the folder holds.
const MAX_GRAD_CAMS: usize = 24;

#[derive(Args)]
pub struct ReportArgs {
    /// Run directory (written by `incept train`).
    run: PathBuf,
    /// The HTML file to write [default: RUN/report.html].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Folder of `incept explain`'s pictures (NAME.gradcam.png) [default: RUN/gradcam].
    #[arg(long)]
    gradcam: Option<PathBuf>,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let dir = &args.run;
    let cfg = load_config(dir)?;
    let out = args.out.clone().unwrap_or_else(|| dir.join(REPORT_HTML));
    let gradcam_dir = args.gradcam.clone().unwrap_or_else(|| dir.join("gradcam"));
    let grad_cam_files = grad_cam_pictures(&gradcam_dir)?;
    let evaluation_files = [METRICS_JSON, CONFUSION_PNG, ROC_PNG, PRECISION_RECALL_PNG, TOP_LOSSES_PNG];
    let run_files = [RUN_CONFIG, HISTORY_JSON, LAST, PROFILE_JSON, PROFILE_PNG].into_iter().chain(evaluation_files);
    let mut inputs: Vec<Named> = run_files.map(|f| named(format!("the run's {f}"), dir.join(f))).collect();
    inputs.extend(grad_cam_files.iter().map(|p| named("a Grad-CAM picture", p)));
    refuse_output_inside_inputs(&[named("--out", &out)], &inputs)?;
    check_writable(&out)?;

    let config = match serde_json::to_value(&cfg) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err(Error::Invalid(format!("{}: cannot encode the run configuration", dir.join(RUN_CONFIG).display()))),
    };
    let history = if dir.join(HISTORY_JSON).exists() { History::load(dir)? } else { History::new() };
    let state = match dir.join(LAST) {
        last if last.exists() => Some(checkpoint::read_state(&last)?),
        _ => None,
    };
    let monitor = cfg.callbacks.monitor;
    let best = state.as_ref().and_then(|s| Some((monitor.name().to_string(), s.best.best_epoch?, s.best.best?)));
    let evaluation = match dir.join(METRICS_JSON) {
        metrics if metrics.exists() => {
            let text = read_text(&metrics)?;
            let report: MetricsReport = serde_json::from_str(&text).map_err(|e| io_error(&metrics, format!("not incept's metrics.json: {e}")))?;
            let captions = [(CONFUSION_PNG, "Confusion matrix"), (ROC_PNG, "ROC curves"), (PRECISION_RECALL_PNG, "Precision-recall curves"), (TOP_LOSSES_PNG, "Top losses")];
            let mut pictures = Vec::new();
            for (file, caption) in captions {
                if let Some(png) = read_png_if_present(&dir.join(file))? {
                    pictures.push((caption.to_string(), png));
                }
            }
            Some((report, pictures))
        }
        _ => None,
    };
    let mut grad_cams = Vec::new();
    for path in grad_cam_files.iter().take(MAX_GRAD_CAMS) {
        let name = path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
        grad_cams.push((name, read_png(path)?));
    }
    if grad_cam_files.len() > MAX_GRAD_CAMS {
        eprintln!("note: the report shows the first {MAX_GRAD_CAMS} of the {} Grad-CAM pictures in {}", grad_cam_files.len(), gradcam_dir.display());
    }
    let profile = match dir.join(PROFILE_JSON) {
        json if json.exists() => Some((ProfileReport::load_json(&json)?, read_png_if_present(&dir.join(PROFILE_PNG))?)),
        _ => None,
    };
    let report = RunReport {
        run: dir.display().to_string(),
        config,
        classes: cfg.classes.clone(),
        class_counts: state.and_then(|s| s.data),
        history,
        best,
        evaluation,
        grad_cams: (gradcam_dir.display().to_string(), grad_cams),
        profile,
    };
    write_atomic(&out, report.to_html()?.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}

/// The folder's `*.gradcam.png` files, sorted; none when the folder does not exist.
fn grad_cam_pictures(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, format!("cannot list the Grad-CAM folder: {e}"))),
    };
    let mut pictures = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| io_error(dir, format!("cannot list the Grad-CAM folder: {e}")))?.path();
        if path.is_file() && path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(PICTURE_SUFFIX)) {
            pictures.push(path);
        }
    }
    pictures.sort();
    Ok(pictures)
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| io_error(path, format!("cannot read: {e}")))
}

/// A PNG file's bytes, checked to be a PNG (the page embeds it as one).
fn read_png(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| io_error(path, format!("cannot read: {e}")))?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(io_error(path, "not a PNG file".into()));
    }
    Ok(bytes)
}

fn read_png_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    if path.exists() { read_png(path).map(Some) } else { Ok(None) }
}

fn io_error(path: &Path, reason: String) -> Error {
    Error::Io { path: path.display().to_string(), reason }
}
