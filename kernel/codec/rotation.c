/* The seeded randomized Hadamard rotation (rotation.h). Plain float arithmetic in one
 * order: native and wasm give the same bits. */
#include "rotation.h"
#include <stdint.h>

#define ROT_SEED 0x9e3779b97f4a7c15ULL

static float sign_of(int round, int i) {
    uint64_t z = ROT_SEED + (uint64_t)(2 * i + round) * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (z & 1) ? -1.0f : 1.0f;
}

/* In-place orthonormal Walsh-Hadamard transform of every block of 64. */
static void fwht64(float *v, int dpad) {
    for (int b = 0; b < dpad; b += 64) {
        float *x = v + b;
        for (int h = 1; h < 64; h *= 2)
            for (int i = 0; i < 64; i += 2 * h)
                for (int j = i; j < i + h; j++) {
                    float a = x[j], c = x[j + h];
                    x[j] = a + c;
                    x[j + h] = a - c;
                }
        for (int i = 0; i < 64; i++) x[i] *= 0.125f; /* 1/sqrt(64) */
    }
}

void qa_rotate(const float *in, float *out, int dpad) {
    const int nb = dpad / 64;
    float tmp[dpad];
    for (int i = 0; i < dpad; i++) tmp[i] = in[i] * sign_of(0, i);
    fwht64(tmp, dpad);
    for (int i = 0; i < dpad; i++) {
        int j = (i % 64) * nb + i / 64;
        out[j] = tmp[i] * sign_of(1, j);
    }
    fwht64(out, dpad);
}

void qa_rotate_inverse(const float *in, float *out, int dpad) {
    const int nb = dpad / 64;
    float tmp[dpad];
    for (int i = 0; i < dpad; i++) tmp[i] = in[i];
    fwht64(tmp, dpad);
    for (int i = 0; i < dpad; i++) {
        int j = (i % 64) * nb + i / 64;
        out[i] = tmp[j] * sign_of(1, j);
    }
    fwht64(out, dpad);
    for (int i = 0; i < dpad; i++) out[i] *= sign_of(0, i);
}
