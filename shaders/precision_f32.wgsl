// Arithmetic in f32, the baseline everywhere: prepended to the kernels that
// also come in f16 (precision_f16.wgsl), whose f32 pipelines it leaves as
// they were written. The f16 cache is read a word (two values) at a time.

alias H = f32;
alias CachePair = u32;

// Two cached values.
fn pair(c: CachePair) -> vec2<H> {
    return unpack2x16float(c);
}

// Two values rounded to f16, as llama.cpp rounds queries and attention
// weights (kept in f32 here).
fn half2(v: vec2<f32>) -> vec2<H> {
    return unpack2x16float(pack2x16float(v));
}
