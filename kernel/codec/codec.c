/* The table of codec rows, the variant selection, and the loops every row shares. */
#include "codec.h"
#include "../distance.h"
#include <string.h>

static qa_codec table[QA_CODEC_COUNT];
static int selected = -1;

int qa_codec_avx2(void) { return qa_have_avx2; }

void qa_codec_select(int simd) {
    const qa_codec *rows[QA_CODEC_COUNT] = {0};
    rows[QA_CODEC_NONE] = &qa_codec_none_row;
    rows[QA_CODEC_SQ8] = &qa_codec_sq8_row;
    rows[QA_CODEC_SQ4] = &qa_codec_sq4_row;
    rows[QA_CODEC_RABITQ1] = &qa_codec_rabitq1_row;
    rows[QA_CODEC_RABITQ2] = &qa_codec_rabitq2_row;
    rows[QA_CODEC_RABITQ3] = &qa_codec_rabitq3_row;
    rows[QA_CODEC_RABITQ4] = &qa_codec_rabitq4_row;
    for (int i = 0; i < QA_CODEC_COUNT; i++) {
        qa_codec c = *rows[i];
        int v = 0;
        if (simd)
            for (int j = c.n_variants - 1; j > 0; j--)
                if (!c.variants[j].available || c.variants[j].available()) { v = j; break; }
        c.dist = c.variants[v].dist;
        c.dist_batch = c.variants[v].dist_batch;
        table[i] = c;
    }
    selected = simd;
}

const qa_codec *qa_codec_get(int id) {
    if (id < 0 || id >= QA_CODEC_COUNT) return NULL;
    if (selected < 0) qa_codec_select(1); /* wasm has no start-up hook: first use */
    return &table[id];
}

int qa_code_size(int kind, int d) {
    if (kind < 0 || kind >= QA_CODEC_COUNT || d < 1) return -1;
    const qa_codec *rows[QA_CODEC_COUNT] = {&qa_codec_none_row,     &qa_codec_sq8_row,     &qa_codec_sq4_row,
                                            &qa_codec_rabitq1_row, &qa_codec_rabitq2_row, &qa_codec_rabitq3_row,
                                            &qa_codec_rabitq4_row};
    return rows[kind]->code_size(d);
}

int qa_quantizer_init(qa_quantizer *qz, int kind, int d, const float *vmin, const float *scale) {
    int cs = qa_code_size(kind, d);
    if (cs < 0) return -1;
    qz->kind = kind;
    qz->d = d;
    qz->dpad = qa_pad_dims(d);
    qz->code_size = cs;
    qz->stride = cs;
    qz->vmin = vmin;
    qz->scale = scale;
    return 0;
}

void qa_encode(const qa_quantizer *qz, const float *x, int64_t n, uint8_t *codes, float *resid) {
    const qa_codec *c = qa_codec_get(qz->kind);
    for (int64_t r = 0; r < n; r++) {
        c->encode(qz, x + r * qz->d, codes + r * qz->code_size);
        if (resid && c->residual) resid[r] = c->residual(qz, x + r * qz->d, codes + r * qz->code_size);
    }
}

void qa_decode(const qa_quantizer *qz, const uint8_t *code, float *out) {
    qa_codec_get(qz->kind)->decode(qz, code, out);
}

void qa_code_norms(const qa_quantizer *qz, const uint8_t *codes, int64_t n, float *out) {
    float buf[qz->d > 0 ? qz->d : 1];
    for (int64_t r = 0; r < n; r++) {
        qa_decode(qz, codes + r * qz->code_size, buf);
        out[r] = qa_dot_f32_ref(buf, buf, (size_t)qz->d);
    }
}

void qa_sq_prepare(const qa_quantizer *qz, const float *q, qa_query *out, int cmax) {
    const int d = qz->d;
    out->q = q;
    out->qnorm2 = qa_dot_f32_ref(q, q, (size_t)d);
    /* Largest |w| for which dpad * cmax * |w| stays inside int32. */
    int64_t wmax = 2147483647LL / ((int64_t)qz->dpad * cmax);
    if (wmax > 32767) wmax = 32767;
    float amax = 0.0f, bias = 0.0f, qerr = 0.0f;
    for (int i = 0; i < d; i++) {
        float a = fabsf(q[i] * qz->scale[i]);
        if (a > amax) amax = a;
        bias += q[i] * qz->vmin[i];
        qerr += a;
    }
    out->bias = bias;
    out->qerr = 0.5f * qerr;
    out->wscale = amax > 0.0f ? amax / (float)wmax : 1.0f;
    const float inv = 1.0f / out->wscale;
    for (int i = 0; i < qz->dpad; i++) out->w[i] = i < d ? qa_weight_i16(q[i] * qz->scale[i] * inv) : 0;
}
