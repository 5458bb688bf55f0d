//! The activation a convolution's epilogue applies after its scale and bias
//! (a fused Keras Activation / ReLU layer): none, ReLU, or ReLU6
//! (`ReLU(max_value=6)`, MobileNetV2 and EfficientNet-Lite). The conv and
//! depthwise kernels read it as bits of their `epilogue` parameter
//! ([`Act::epilogue_bits`]).

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    Linear,
    Relu,
    /// min(max(v, 0), 6).
    Relu6,
}

/// Bits of the kernels' `epilogue` parameter (shaders/conv2d_*.wgsl,
/// shaders/depthwise_conv2d.wgsl): `max(v, 0)`, then `min(v, 6)`; ReLU6 sets both.
pub(crate) const EPILOGUE_RELU: u32 = 4;
pub(crate) const EPILOGUE_CAP6: u32 = 8;

impl Act {
    /// Every activation (tests iterate it).
    pub const ALL: [Act; 3] = [Act::Linear, Act::Relu, Act::Relu6];

    /// The Keras name: `linear`, `relu` or `relu6`.
    pub fn name(self) -> &'static str {
        match self {
            Act::Linear => "linear",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
        }
    }

    /// The activation's definition, in f64 (the CPU references apply it).
    pub fn apply(self, v: f64) -> f64 {
        match self {
            Act::Linear => v,
            Act::Relu => v.max(0.0),
            Act::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    /// Its bits of a kernel's `epilogue` parameter.
    pub(crate) fn epilogue_bits(self) -> u32 {
        match self {
            Act::Linear => 0,
            Act::Relu => EPILOGUE_RELU,
            Act::Relu6 => EPILOGUE_RELU | EPILOGUE_CAP6,
        }
    }
}
