/* Byte-level BPE pre-tokenizers: the split regexes of tokenizer.ggml.pre written as
 * scanners over Unicode classes (letter, number, white space, other), no regex engine.
 * Each scanner returns the end of the leftmost-longest match of the regex at pos, with the
 * lookahead (?!\S) of "\s+(?!\S)" read inside the current fragment only, as llama.cpp and
 * the HuggingFace tokenizers do on pre-split text. */
#include "tokenizer.h"
#include "unicode_cats.h"

#define NONE 0xFF /* class past the end of the fragment */

uint8_t qa_uc_class(uint32_t cp) {
    if (cp < 0x80) return qa_uc_ascii[cp];
    uint32_t lo = 0, hi = sizeof qa_uc_ranges / sizeof qa_uc_ranges[0];
    while (lo < hi) { /* first range whose last codepoint >= cp */
        uint32_t mid = (lo + hi) / 2;
        if ((qa_uc_ranges[mid][1] >> 2) < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < sizeof qa_uc_ranges / sizeof qa_uc_ranges[0] && qa_uc_ranges[lo][0] <= cp)
        return (uint8_t)(qa_uc_ranges[lo][1] & 3);
    return QA_UC_OTHER;
}

uint32_t qa_utf8_next(const uint8_t *s, uint64_t n, uint32_t *used) {
    uint8_t b = s[0];
    *used = 1;
    if (b < 0x80) return b;
    int k = b < 0xC0 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 0;
    if (!k || (uint64_t)k > n) return 0xFFFD;
    uint32_t cp = b & (0x7F >> k);
    for (int i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFD;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp > 0x10FFFF) return 0xFFFD;
    *used = (uint32_t)k;
    return cp; /* overlong forms and surrogates are read as their value, like llama.cpp */
}

uint32_t qa_utf8_put(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t lower_ascii(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

/* 's 't 're 've 'm 'll 'd at pos: the end of the match, or 0 */
static uint64_t contraction(const uint32_t *cp, uint64_t pos, uint64_t hi, int any_case) {
    if (cp[pos] != '\'' || pos + 1 >= hi) return 0;
    uint32_t a = any_case ? lower_ascii(cp[pos + 1]) : cp[pos + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return pos + 2;
    if (pos + 2 >= hi) return 0;
    uint32_t b = any_case ? lower_ascii(cp[pos + 2]) : cp[pos + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return pos + 3;
    return 0;
}

/* \s+(?!\S)|\s+ at pos (a space): all of a run that ends the fragment, else all but its
 * last character (which then prefixes the next word), at least one. */
static uint64_t spaces(const uint8_t *cls, uint64_t pos, uint64_t hi) {
    uint64_t w = pos;
    while (w < hi && cls[w] == QA_UC_SPACE) w++;
    if (w - pos > 1 && w < hi) return w - 1;
    return w > pos ? w : pos + 1;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static uint64_t gpt2_word(const uint32_t *cp, const uint8_t *cls, uint64_t pos, uint64_t hi) {
    uint64_t e = contraction(cp, pos, hi, 0);
    if (e) return e;
    uint64_t q = pos + (cp[pos] == ' ');
    uint8_t k = q < hi ? cls[q] : NONE;
    if (k == QA_UC_LETTER || k == QA_UC_NUMBER || k == QA_UC_OTHER) {
        while (q < hi && cls[q] == k) q++;
        return q;
    }
    return spaces(cls, pos, hi);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 * ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static uint64_t llama3_word(const uint32_t *cp, const uint8_t *cls, uint64_t pos, uint64_t hi,
                            uint64_t max_digits) {
    uint64_t e = contraction(cp, pos, hi, 1);
    if (e) return e;
    uint32_t c = cp[pos];
    uint8_t k = cls[pos];
    if (c != '\r' && c != '\n' && k != QA_UC_NUMBER &&
        (k == QA_UC_LETTER || (pos + 1 < hi && cls[pos + 1] == QA_UC_LETTER))) {
        uint64_t q = pos + 1;
        while (q < hi && cls[q] == QA_UC_LETTER) q++;
        return q;
    }
    if (k == QA_UC_NUMBER) {
        uint64_t q = pos + 1;
        while (q < hi && q - pos < max_digits && cls[q] == QA_UC_NUMBER) q++;
        return q;
    }
    uint64_t q = pos + (c == ' ');
    uint8_t k2 = q < hi ? cls[q] : NONE;
    if (k2 == QA_UC_OTHER) {
        while (q < hi && cls[q] == QA_UC_OTHER) q++;
        while (q < hi && (cp[q] == '\r' || cp[q] == '\n')) q++;
        return q;
    }
    /* \s*[\r\n]+ : up to the last line break of the space run */
    uint64_t w = pos, nl = 0;
    for (; w < hi && cls[w] == QA_UC_SPACE; w++)
        if (cp[w] == '\r' || cp[w] == '\n') nl = w + 1;
    if (nl) return nl;
    return spaces(cls, pos, hi);
}

void qa_pretok_begin(qa_pretok *p, int pre, const uint32_t *cp, const uint8_t *cls, uint64_t n) {
    p->pre = pre;
    p->cp = cp;
    p->cls = cls;
    p->n = n;
    p->pos = 0;
    p->run_end = 0;
}

int qa_pretok_next(qa_pretok *p, uint64_t *start, uint64_t *end) {
    uint64_t pos = p->pos, e;
    if (pos >= p->n) return 0;
    switch (p->pre) {
    case QA_PRE_SMOLLM:
        if (p->cls[pos] == QA_UC_NUMBER) {
            e = pos + 1;
            break;
        }
        if (p->run_end <= pos) {
            uint64_t r = pos;
            while (r < p->n && p->cls[r] != QA_UC_NUMBER) r++;
            p->run_end = r;
        }
        e = gpt2_word(p->cp, p->cls, pos, p->run_end);
        break;
    case QA_PRE_LLAMA3: e = llama3_word(p->cp, p->cls, pos, p->n, 3); break;
    case QA_PRE_QWEN2: e = llama3_word(p->cp, p->cls, pos, p->n, 1); break;
    default: e = gpt2_word(p->cp, p->cls, pos, p->n); break;
    }
    *start = pos;
    *end = e;
    p->pos = e;
    return 1;
}
