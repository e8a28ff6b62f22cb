// GELU's tanh form as ggml's CPU evaluates it (`GGML_GELU_FP16`): on the
// value rounded to f16, the result rounded to f16 (its lookup table);
// values at or past ±10 give 0 or themselves. Appended to gelu.wgsl and
// geglu.wgsl.

fn to_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2<f32>(v, 0.0))).x;
}

fn gelu_f16(g: f32) -> f32 {
    if (g <= -10.0) {
        return 0.0;
    }
    if (g >= 10.0) {
        return g;
    }
    let v = to_f16(g);
    // 0.5·v·(1 + tanh(u)) as v / (1 + exp(-2u)): the same function without
    // 1 + tanh's cancellation, where a GPU's tanh is loose.
    let u = 0.7978846 * v * (1.0 + 0.044715 * v * v);
    return to_f16(v / (1.0 + exp(-2.0 * u)));
}
