// Arithmetic in f16 where the adapter has `shader-f16`: prepended in place
// of precision_f32.wgsl, so that the same kernel stages and multiplies in
// f16 (half the workgroup memory and registers, twice the products a
// cycle on most GPUs). The f16 cache is read as the f16 pairs it holds.
// Kernels still sum in f32.

enable f16;

alias H = f16;
alias CachePair = vec2<f16>;

fn pair(c: CachePair) -> vec2<H> {
    return c;
}

fn half2(v: vec2<f32>) -> vec2<H> {
    return vec2<f16>(v);
}
