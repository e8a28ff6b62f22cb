//! The pieces decoder layers are built of, shared by the architectures:
//! linear layers with optional biases, the attention projections (separate
//! or fused), the two kinds of norm, and the output head. Each finds its
//! tensors by llama.cpp's names and checks their shapes when registered.

use super::{Attention, Backend, Logits, Rope, WeightSlots};
use crate::gguf::Header;
use crate::Result;

/// Whether a linear layer's `.bias` tensor must, may or must not be there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bias {
    No,
    Optional,
    Required,
}

/// `x · wᵀ (+ b)`.
pub(crate) struct Linear {
    w: usize,
    b: Option<usize>,
}

impl Linear {
    /// `{name}.weight` taking `cols` values to `rows`, and `{name}.bias`.
    pub fn want<W>(
        slots: &mut WeightSlots<W>,
        header: &Header,
        name: &str,
        cols: usize,
        rows: usize,
        bias: Bias,
    ) -> Result<Linear> {
        let w = slots.want(header, &format!("{name}.weight"), &[cols, rows])?;
        Ok(Linear { w, b: Self::bias(slots, header, name, rows, bias)? })
    }

    /// A linear layer whose weight is already registered (a tied output
    /// matrix), with its own bias.
    pub fn with_weight<W>(
        slots: &mut WeightSlots<W>,
        header: &Header,
        w: usize,
        name: &str,
        rows: usize,
        bias: Bias,
    ) -> Result<Linear> {
        Ok(Linear { w, b: Self::bias(slots, header, name, rows, bias)? })
    }

    fn bias<W>(
        slots: &mut WeightSlots<W>,
        header: &Header,
        name: &str,
        rows: usize,
        bias: Bias,
    ) -> Result<Option<usize>> {
        let name = format!("{name}.bias");
        match bias {
            Bias::No => Ok(None),
            Bias::Optional => slots.want_opt(header, &name, &[rows]),
            Bias::Required => slots.want(header, &name, &[rows]).map(Some),
        }
    }

    pub fn forward<B: Backend>(&self, b: &mut B, w: &[B::Weight], x: &B::Act) -> B::Act {
        let mut y = b.matmul(x, &w[self.w]);
        if let Some(bias) = self.b {
            b.add_bias(&mut y, &w[bias]);
        }
        y
    }
}

/// Several linear layers of one input, run as one product (q, k and v;
/// gate and up). Their weights may be one fused tensor in the file, split
/// by rows at load.
pub(crate) struct Fused<const N: usize> {
    w: [usize; N],
    b: [Option<usize>; N],
}

impl<const N: usize> Fused<N> {
    /// Separate `{names[i]}.weight`s of `rows[i]` rows.
    pub fn want<W>(
        slots: &mut WeightSlots<W>,
        header: &Header,
        names: [&str; N],
        cols: usize,
        rows: [usize; N],
        bias: Bias,
    ) -> Result<Self> {
        let mut w = [0; N];
        let mut b = [None; N];
        for i in 0..N {
            let l = Linear::want(slots, header, names[i], cols, rows[i], bias)?;
            (w[i], b[i]) = (l.w, l.b);
        }
        Ok(Fused { w, b })
    }

    /// One `{name}.weight` whose rows are the `N` weights one after another;
    /// `{name}.bias` split likewise.
    pub fn want_fused<W>(
        slots: &mut WeightSlots<W>,
        header: &Header,
        name: &str,
        cols: usize,
        rows: [usize; N],
        bias: Bias,
    ) -> Result<Self> {
        let total = rows.iter().sum();
        let w = slots.want_parts(header, &format!("{name}.weight"), &[cols, total], &rows)?;
        let bias_name = format!("{name}.bias");
        let b = match bias {
            Bias::Optional if header.tensor(&bias_name).is_none() => None,
            Bias::No => None,
            _ => Some(slots.want_parts(header, &bias_name, &[total], &rows)?),
        };
        Ok(Fused { w: w.try_into().expect("N parts"), b: b.map_or([None; N], |b| std::array::from_fn(|i| Some(b[i]))) })
    }

    pub fn forward<B: Backend>(&self, b: &mut B, w: &[B::Weight], x: &B::Act) -> [B::Act; N] {
        let mut out = b.matmuls(x, self.w.map(|i| &w[i]));
        for (y, bias) in out.iter_mut().zip(self.b) {
            if let Some(bias) = bias {
                b.add_bias(y, &w[bias]);
            }
        }
        out
    }
}

/// Layer `i`'s query, key and value projections: `attn_q/k/v`, or one
/// fused `attn_qkv` where the file has it (Phi, GPT-2; llama.cpp accepts
/// either for every architecture).
pub(crate) fn qkv<W>(
    slots: &mut WeightSlots<W>,
    header: &Header,
    i: usize,
    n_embd: usize,
    rows: [usize; 3],
    bias: Bias,
) -> Result<Fused<3>> {
    let fused = format!("blk.{i}.attn_qkv");
    if header.tensor(&format!("{fused}.weight")).is_some() {
        return Fused::want_fused(slots, header, &fused, n_embd, rows, bias);
    }
    let names = ["attn_q", "attn_k", "attn_v"].map(|n| format!("blk.{i}.{n}"));
    Fused::want(slots, header, names.each_ref().map(|n| n.as_str()), n_embd, rows, bias)
}

/// Self-attention: projections, optional per-head RMSNorm of q and k,
/// RoPE, attention over the cache, and the output projection.
pub(crate) struct SelfAttention {
    pub qkv: Fused<3>,
    /// Per-head RMSNorm weights of q and k (Qwen 3, Gemma 3).
    pub qk_norm: Option<[usize; 2]>,
    /// q is multiplied by this before attention, whose own scale is then 1
    /// (Phi: llama.cpp scales q, not the scores).
    pub q_scale: Option<f32>,
    pub wo: Linear,
}

impl SelfAttention {
    /// The attention of layer `layer` for the normed input `x` of a batch at
    /// `pos`, its queries and keys rotated by `rope` where there is one.
    #[allow(clippy::too_many_arguments)]
    pub fn forward<B: Backend>(
        &self,
        b: &mut B,
        w: &[B::Weight],
        x: &B::Act,
        cache: &mut B::Cache,
        layer: usize,
        pos: usize,
        rope: Option<&Rope>,
        shape: &Attention,
        eps: f32,
    ) -> B::Act {
        let [mut q, mut k, v] = self.qkv.forward(b, w, x);
        let hd = shape.head_dim;
        if let Some([qn, kn]) = self.qk_norm {
            // Each of a row's heads normed: the batch seen as one head a row.
            let norm_heads = |b: &mut B, x: B::Act, n: usize, weight: usize| {
                let rows = b.rows(&x);
                let x = b.reshape(x, rows * n, hd);
                let x = b.rms_norm(&x, &w[weight], eps);
                b.reshape(x, rows, n * hd)
            };
            q = norm_heads(b, q, shape.n_head, qn);
            k = norm_heads(b, k, shape.n_head_kv, kn);
        }
        if let Some(rope) = rope {
            b.rope(&mut q, shape.n_head, hd, pos, rope);
            b.rope(&mut k, shape.n_head_kv, hd, pos, rope);
        }
        if let Some(s) = self.q_scale {
            b.scale(&mut q, s);
        }
        let a = b.attention(&q, &k, &v, cache, layer, pos, shape);
        self.wo.forward(b, w, &a)
    }
}

/// The activation of a gated feed-forward's gate.
#[derive(Clone, Copy)]
pub(crate) enum Gate {
    Silu,
    Gelu,
}

/// The feed-forward network.
pub(crate) enum Ffn {
    /// `down(act(gate(x)) * up(x))`; gate and up may be one fused `ffn_up`
    /// of twice the width (Phi-3), gate first.
    Gated { gate_up: Fused<2>, act: Gate, down: Linear },
    /// `down(gelu(up(x)))`, with biases (GPT-2, Phi-2).
    Gelu { up: Linear, down: Linear },
}

impl Ffn {
    pub fn forward<B: Backend>(&self, b: &mut B, w: &[B::Weight], x: &B::Act) -> B::Act {
        match self {
            Ffn::Gated { gate_up, act, down } => {
                let [gate, up] = gate_up.forward(b, w, x);
                let f = match act {
                    Gate::Silu => b.swiglu(&gate, &up),
                    Gate::Gelu => b.geglu(&gate, &up),
                };
                down.forward(b, w, &f)
            }
            Ffn::Gelu { up, down } => {
                let u = up.forward(b, w, x);
                let f = b.gelu(&u);
                down.forward(b, w, &f)
            }
        }
    }
}

/// A norm over each row: RMSNorm times a weight, or LayerNorm times a
/// weight plus a bias.
pub(crate) enum Norm {
    Rms(usize),
    Layer(usize, usize),
}

impl Norm {
    /// `{name}.weight` of `n` values.
    pub fn rms<W>(slots: &mut WeightSlots<W>, header: &Header, name: &str, n: usize) -> Result<Norm> {
        Ok(Norm::Rms(slots.want(header, &format!("{name}.weight"), &[n])?))
    }

    /// `{name}.weight` and `{name}.bias` of `n` values.
    pub fn layer<W>(slots: &mut WeightSlots<W>, header: &Header, name: &str, n: usize) -> Result<Norm> {
        let w = slots.want(header, &format!("{name}.weight"), &[n])?;
        Ok(Norm::Layer(w, slots.want(header, &format!("{name}.bias"), &[n])?))
    }

    pub fn forward<B: Backend>(&self, b: &mut B, w: &[B::Weight], x: &B::Act, eps: f32) -> B::Act {
        match *self {
            Norm::Rms(g) => b.rms_norm(x, &w[g], eps),
            Norm::Layer(g, bias) => b.layer_norm(x, &w[g], &w[bias], eps),
        }
    }
}

/// The final norm and the output matrix: `output.weight`, or the embedding
/// table where the file has none (tied); `output.bias` as `bias` says.
pub(crate) struct Head {
    pub norm: Norm,
    pub output: Linear,
}

impl Head {
    pub fn want<W>(
        slots: &mut WeightSlots<W>,
        header: &Header,
        norm: Norm,
        embd: usize,
        n_embd: usize,
        n_vocab: usize,
        bias: Bias,
    ) -> Result<Head> {
        let output = match header.tensor("output.weight") {
            Some(_) => Linear::want(slots, header, "output", n_embd, n_vocab, bias)?,
            None => Linear::with_weight(slots, header, embd, "output", n_vocab, bias)?,
        };
        Ok(Head { norm, output })
    }

    /// The logits asked for from the last layer's output `x` of a batch.
    pub fn forward<B: Backend>(
        &self,
        b: &mut B,
        w: &[B::Weight],
        mut x: B::Act,
        rows: usize,
        logits: Logits,
        eps: f32,
    ) -> B::Act {
        let first = logits.first_row(rows);
        if first > 0 {
            x = b.rows_from(&x, first);
        }
        let xn = self.norm.forward(b, w, &x, eps);
        self.output.forward(b, w, &xn)
    }
}
