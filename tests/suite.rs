//! Every integration test, compiled as one test binary (`cargo test --test
//! suite`; one file per module, e.g. `cargo test --test suite reliability::`).
//! One binary links wgpu, naga and the image codecs once instead of once per
//! file: with ~50 files that was most of a clean test build's time and disk.
//! Shared helpers: `common` (GPU, random data, tolerances) and `binary`
//! (running the `incept` executable).

mod binary;
mod common;
mod autograd;
mod backbone_parity;
mod backbones;
mod backbones_cli;
mod batchnorm;
mod concat;
mod conv;
mod conv_backward;
mod conv_coop;
mod conv_tuning;
mod conv_winograd;
mod coop_shader;
mod data;
mod depthwise;
mod dicom;
mod dropout;
mod e2e;
mod elementwise;
mod evaluate_tta;
mod evaluation_metrics;
mod executor;
mod explain;
mod export;
mod feature_cache;
mod fine_tune;
mod fit_golden;
mod gpu;
mod inception_v3;
mod keras_config;
mod keras_import;
mod kernel_lab;
mod kernel_study;
mod kernel_layout;
mod loss;
mod matmul;
mod medical_workflow;
mod optim;
mod pad;
mod padding_goldens;
mod parity;
mod pool;
mod profile;
mod reduce;
mod reliability;
mod run_report;
mod report;
mod sibling_conv;
mod split;
mod stages;
mod tfjs_named;
mod torch_pth;
mod validation_split;
mod weights;
