/* The random orthogonal rotation of the RaBitQ rows: a fixed, seeded "randomized Hadamard"
 * over dpad (a multiple of 64) dimensions, O(dpad log 64) per vector and no stored matrix.
 *
 *   P v = H64 S2 T H64 S1 v
 *   S1, S2  diagonal random signs (splitmix64 of a fixed seed and the index: the same on
 *           every platform, so nothing is stored in the file)
 *   H64     the orthonormal Walsh-Hadamard transform of each block of 64 dimensions
 *   T       the "transpose" permutation i -> (i % 64) * nb + i / 64 over nb = dpad/64 blocks,
 *           so the second H64 mixes every block with every other
 * Each factor is orthogonal, so P is; P^-1 = S1 H64 T^-1 S2 H64. */
#ifndef QA_ROTATION_H
#define QA_ROTATION_H
void qa_rotate(const float *in, float *out, int dpad);        /* out = P in, dpad values */
void qa_rotate_inverse(const float *in, float *out, int dpad); /* out = P^-1 in */
#endif
