//! `incept report`'s page: one self-contained HTML file of a run, built from
//! what the run directory holds (gathered by the command; this module only
//! lays it out): the configuration, the class counts, the training curves
//! and per-epoch table, the test evaluation, the Grad-CAM gallery and the
//! profile's top kernels. A part the run does not have yet (no evaluation,
//! no profile) gets a line saying which command makes it.

use super::evaluation::MetricsReport;
use super::history::History;
use super::html::Page;
use super::plots;
use super::profile::ProfileReport;
use crate::error::Result;
use std::collections::BTreeMap;

pub const REPORT_HTML: &str = "report.html";
/// The profile's kernel variants listed.
const TOP_KERNELS: usize = 10;

/// Everything the page shows.
pub struct RunReport {
    /// The run directory as the user named it.
    pub run: String,
    /// run.json as read.
    pub config: serde_json::Map<String, serde_json::Value>,
    pub classes: Vec<String>,
    /// Images per class (in class order) of each split, when the checkpoint recorded them.
    pub class_counts: Option<BTreeMap<String, Vec<usize>>>,
    pub history: History,
    /// The monitored quantity, its best epoch and value.
    pub best: Option<(String, usize, f64)>,
    /// metrics.json and the pictures `incept evaluate` wrote beside it (caption, PNG).
    pub evaluation: Option<(MetricsReport, Vec<(String, Vec<u8>)>)>,
    /// Grad-CAM pictures (file name, PNG), and the folder they came from.
    pub grad_cams: (String, Vec<(String, Vec<u8>)>),
    /// profile.json and profile.png.
    pub profile: Option<(ProfileReport, Option<Vec<u8>>)>,
}

impl RunReport {
    pub fn to_html(&self) -> Result<String> {
        let mut page = Page::new();
        page.heading(1, None, &format!("incept run report: {}", self.run));
        self.summary(&mut page);
        self.dataset(&mut page);
        self.training(&mut page)?;
        self.evaluation(&mut page);
        self.grad_cam(&mut page);
        self.profile(&mut page);
        self.configuration(&mut page);
        page.note(&format!("Written by incept {}.", env!("CARGO_PKG_VERSION")));
        Ok(page.finish(&format!("incept report: {}", self.run)))
    }

    fn summary(&self, page: &mut Page) {
        page.open_section("summary");
        page.heading(2, None, "Summary");
        let setting = |key: &str| self.config.get(key).map_or("not recorded".to_string(), plain);
        let mut rows = vec![
            vec!["backbone".into(), setting("backbone")],
            vec!["image size".into(), setting("image_size")],
            vec!["classes".into(), self.classes.join(", ")],
            vec!["epochs trained".into(), self.history.epochs.len().to_string()],
        ];
        if let Some((monitor, epoch, value)) = &self.best {
            rows.push(vec![format!("best epoch (by {monitor})"), format!("{epoch} ({monitor} {value:.4})")]);
        }
        if let Some((m, _)) = &self.evaluation {
            rows.push(vec![format!("test accuracy ({})", m.source.data), format!("{:.4}", m.accuracy)]);
        }
        let seconds: f64 = self.history.epochs.iter().map(|r| r.seconds).sum();
        rows.push(vec!["training time".into(), format!("{seconds:.0} s")]);
        page.table(&["", "value"], &rows);
        page.close_section();
    }

    fn configuration(&self, page: &mut Page) {
        page.open_section("configuration");
        page.heading(2, None, "Configuration (run.json)");
        let rows: Vec<Vec<String>> = self.config.iter().map(|(k, v)| vec![k.clone(), plain(v)]).collect();
        page.table(&["setting", "value"], &rows);
        page.close_section();
    }

    fn dataset(&self, page: &mut Page) {
        page.open_section("dataset");
        page.heading(2, None, "Dataset");
        let Some(counts) = &self.class_counts else {
            page.note("The checkpoint does not record the class counts (written before incept recorded them).");
            page.close_section();
            return;
        };
        // Training order, then any other split by name.
        let rank = |s: &str| ["train", "validation", "test"].iter().position(|&k| k == s).unwrap_or(3);
        let mut splits: Vec<&String> = counts.keys().collect();
        splits.sort_by_key(|s| (rank(s), s.to_string()));
        let mut header = vec!["class"];
        header.extend(splits.iter().map(|s| s.as_str()));
        let mut rows: Vec<Vec<String>> = self
            .classes
            .iter()
            .enumerate()
            .map(|(c, name)| {
                let mut row = vec![name.clone()];
                row.extend(splits.iter().map(|s| counts[*s].get(c).map_or(String::new(), usize::to_string)));
                row
            })
            .collect();
        let mut total = vec!["total".to_string()];
        total.extend(splits.iter().map(|s| counts[*s].iter().sum::<usize>().to_string()));
        rows.push(total);
        page.table(&header, &rows);
        page.close_section();
    }

    fn training(&self, page: &mut Page) -> Result<()> {
        page.open_section("training");
        page.heading(2, None, "Training");
        if self.history.epochs.is_empty() {
            page.note("No epoch has finished yet.");
            page.close_section();
            return Ok(());
        }
        page.picture("Loss", &plots::loss_png(&self.history)?);
        page.picture("Accuracy", &plots::accuracy_png(&self.history)?);
        if let Some(png) = plots::auc_png(&self.history)? {
            page.picture("Validation ROC-AUC", &png);
        }
        page.note("Training loss and accuracy are measured in training mode (dropout on, BatchNorm as trained), as Keras reports them.");
        let rows: Vec<Vec<String>> = self
            .history
            .epochs
            .iter()
            .map(|r| {
                vec![
                    r.epoch.to_string(),
                    format!("{:.4}", r.loss),
                    format!("{:.4}", r.accuracy),
                    format!("{:.4}", r.val_loss),
                    format!("{:.4}", r.val_accuracy),
                    r.val_auc.map_or("n/a".into(), |a| format!("{a:.4}")),
                    format!("{:.1e}", r.lr),
                    format!("{:.1}", r.seconds),
                    format!("{:.1}", r.images_per_second),
                ]
            })
            .collect();
        page.table(&["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_auc", "lr", "seconds", "images/s"], &rows);
        page.close_section();
        Ok(())
    }

    fn evaluation(&self, page: &mut Page) {
        page.open_section("evaluation");
        page.heading(2, None, "Test evaluation");
        let Some((m, pictures)) = &self.evaluation else {
            page.note(&format!("Not evaluated yet: incept evaluate --model {} --data DIR/test", self.run));
            page.close_section();
            return;
        };
        let optional = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        page.paragraph(&format!("{} images of {}, {} checkpoint, {} test-time cop{}.", m.images, m.source.data, m.source.checkpoint, m.source.tta, if m.source.tta == 1 { "y" } else { "ies" }));
        page.table(
            &["metric", "value"],
            &[
                vec!["accuracy".into(), format!("{:.4}", m.accuracy)],
                vec!["balanced accuracy".into(), optional(m.balanced_accuracy)],
                vec!["macro ROC-AUC".into(), optional(m.macro_roc_auc)],
                vec!["macro average precision".into(), optional(m.macro_average_precision)],
            ],
        );
        let rows: Vec<Vec<String>> = m
            .per_class
            .iter()
            .map(|c| {
                vec![
                    c.class.clone(),
                    format!("{:.4}", c.scores.precision),
                    format!("{:.4}", c.scores.recall),
                    format!("{:.4}", c.scores.f1),
                    c.scores.support.to_string(),
                    optional(c.sensitivity),
                    optional(c.specificity),
                    optional(c.roc_auc),
                    optional(c.average_precision),
                ]
            })
            .collect();
        page.table(&["class", "precision", "recall", "f1", "support", "sensitivity", "specificity", "ROC-AUC", "AP"], &rows);
        for (caption, png) in pictures {
            page.picture(caption, png);
        }
        page.close_section();
    }

    fn grad_cam(&self, page: &mut Page) {
        page.open_section("gradcam");
        page.heading(2, None, "Grad-CAM");
        let (folder, pictures) = &self.grad_cams;
        if pictures.is_empty() {
            page.note(&format!("No Grad-CAM pictures in {folder}: incept explain --model {} --out {folder} IMAGE|DIR…", self.run));
        }
        for (name, png) in pictures {
            page.picture(name, png);
        }
        page.close_section();
    }

    fn profile(&self, page: &mut Page) {
        page.open_section("profile");
        page.heading(2, None, "Profile");
        let Some((p, png)) = &self.profile else {
            page.note("Not profiled: incept train … --profile writes RUN/profile.json.");
            page.close_section();
            return;
        };
        page.paragraph(&format!("{} on {}: {} steps, {:.1} ms per step, {:.1} ms in kernels ({}).", p.label, p.adapter, p.steps, p.step_ms, p.kernel_ms, p.timing_note));
        let rows: Vec<Vec<String>> = p
            .variants
            .iter()
            .take(TOP_KERNELS)
            .map(|r| vec![r.name.clone(), r.calls.to_string(), format!("{:.2}", r.ms), format!("{:.1} %", 100.0 * r.share), format!("{:.1}", r.gflops_per_s), format!("{:.1}", r.gb_per_s)])
            .collect();
        page.table(&["kernel", "calls", "ms", "of wall time", "GFLOP/s", "GB/s"], &rows);
        if let Some(png) = png {
            page.picture("Profile", png);
        }
        page.close_section();
    }
}

/// A JSON value as a person reads it: strings without quotes, numbers that
/// were f32 settings as the f32 (0.3, not 0.30000001192092896), the rest compact.
fn plain(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => match n.as_f64() {
            Some(v) if n.is_f64() && v as f32 as f64 == v => (v as f32).to_string(),
            _ => n.to_string(),
        },
        v => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::plain;
    use serde_json::json;

    #[test]
    fn settings_read_as_they_were_given() {
        assert_eq!(plain(&json!(0.3f32)), "0.3");
        assert_eq!(plain(&json!(0.001f64)), "0.001");
        assert_eq!(plain(&json!(224)), "224");
        assert_eq!(plain(&json!("rescale")), "rescale");
        assert_eq!(plain(&json!([512, 512])), "[512,512]");
    }
}
