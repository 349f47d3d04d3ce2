/*
 * json_schema.h - private to src/sampling: JSON Schema constrained output.
 *
 * A schema text is compiled (json_schema_compile.c) into a graph of nodes,
 * then a recognizer (json_schema_run.c) reads the output byte by byte and
 * accepts a byte iff the bytes so far can still be completed into one JSON
 * value that the schema accepts under the generation rules below. The
 * constraint over a vocabulary (json_schema_mask.c) turns that into token
 * masks; JSON mode is the schema {"type":"object"}. docs/structured-output.md is
 * the user's description; the subset and the rules are:
 *
 *   type (a name or a list), enum, const (any JSON values), properties,
 *   required, additionalProperties, items, prefixItems, additionalItems,
 *   minItems, maxItems, minLength, maxLength, anyOf, oneOf (read as anyOf),
 *   allOf with one schema, $ref to "#", "#/$defs/NAME" or
 *   "#/definitions/NAME" (recursion allowed), $defs, definitions,
 *   uniqueItems: false; annotations (title, description, $schema, $id,
 *   $comment, examples, default, deprecated, readOnly, writeOnly, x-*) are
 *   ignored; every other keyword is refused. enum/const go with type only;
 *   anyOf/oneOf/allOf/$ref with annotations only.
 *
 *   Rules of the output (all outputs are valid instances; some valid
 *   instances are not produced):
 *   - an object's declared properties come in declaration order, each at
 *     most once; optional ones may be left out; other keys ("additional",
 *     allowed by additionalProperties true or a schema, or by an object
 *     schema without "properties") come after all declared ones and never
 *     equal a declared name; additionalProperties absent beside
 *     "properties" means none (OpenAI's strict mode, llama.cpp);
 *   - keys, and strings and numbers of enum/const, are written in one
 *     canonical form: strings escape only '"', '\' and control characters
 *     (\b \f \n \r \t, else \u00xx in lower case); numbers as the shortest
 *     text that reads back as the same double (integers without a point);
 *   - "integer" is a number without fraction or exponent;
 *   - at most SMP_SCHEMA_MAX_DEPTH nested containers described by the
 *     schema (any-value parts nest up to the recognizer's 64), white space
 *     limited as in JSON mode.
 */
#ifndef HEARTH_JSON_SCHEMA_H
#define HEARTH_JSON_SCHEMA_H

#include "json_prefix.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    SMP_SCHEMA_MAX_DEPTH = 32,     /* nested containers the schema describes */
    SMP_SCHEMA_MAX_THREADS = 32,   /* readings of the output alive at once (anyOf) */
    SMP_SCHEMA_MAX_FRAMES = 256,   /* frames of all readings together */
    SMP_SCHEMA_MAX_NODES = 60000,  /* compiled nodes (frame fields are 16-bit) */
    SMP_SCHEMA_MAX_PROPS = 1024,   /* properties of one object */
    SMP_SCHEMA_MAX_COUNT = 60000,  /* largest minLength/maxLength/minItems/maxItems */
    SMP_SCHEMA_MAX_TEXT = 1 << 20, /* bytes of schema text */
    SMP_SCHEMA_MAX_BITS = 1 << 20, /* 64-bit words of the key tries' property sets (8 MiB) */
    SMP_SCHEMA_MAX_ALTS = 1 << 20  /* entries of the anyOf lists, flattened, in all */
};

/* ---- the compiled schema (json_schema_compile.c) --------------------------- */

enum { /* sch_node.types */
       SCH_T_NULL = 1,
       SCH_T_TRUE = 2,
       SCH_T_FALSE = 4,
       SCH_T_INTEGER = 8, /* a number without fraction or exponent */
       SCH_T_NUMBER = 16, /* any number (integer included) */
       SCH_T_STRING = 32,
       SCH_T_ARRAY = 64,
       SCH_T_OBJECT = 128,
       SCH_T_ALL = 255
};

enum { SCH_NONE = UINT32_MAX, SCH_INF = 255 };

typedef enum sch_kind {
    SCH_TYPED, /* a value of `types` meeting the constraints of its type */
    SCH_ANYOF  /* a value of one of alts (flattened: typed nodes only, after linking) */
} sch_kind;

typedef struct sch_node {
    uint8_t kind;
    uint8_t types;
    /* Containers of this schema a value needs at least (itself included),
     * SCH_INF when none can be written within SMP_SCHEMA_MAX_DEPTH; per
     * kind of value, and overall. */
    uint8_t md, md_obj, md_arr, md_str, md_num;
    bool obj_free, arr_free;       /* an object / array of anything: read without a schema */
    uint32_t alt_first, n_alts;    /* anyOf: alts[alt_first ..] */
    uint32_t prop_first, n_props;  /* props[prop_first ..], declaration order */
    uint32_t key_trie;             /* the declared names (SCH_NONE: none) */
    int32_t additional;            /* node of additional properties, -1: none */
    uint32_t item_first, n_prefix; /* prefix items: items[item_first ..] */
    int32_t items;                 /* elements past the prefix, -1: none */
    uint32_t min_items, max_items; /* max SCH_NONE: no bound */
    uint32_t min_len, max_len;     /* characters, max SCH_NONE: no bound */
    uint32_t str_trie, num_trie;   /* enum/const strings and numbers, SCH_NONE: free */
} sch_node;

typedef struct sch_prop {
    int32_t node;
    bool required;
} sch_prop;

/* A trie over byte strings: children are listed first_child -> next. The
 * tries of object keys carry, per trie node, the set of property indices in
 * its subtree (bits[bits_off ..], words_of(n_props) words; a node with one
 * child and no string of its own shares its child's). */
typedef struct sch_trie {
    uint32_t child, next; /* SCH_NONE: none */
    int32_t term;         /* index of the string ending here, -1: none */
    uint32_t bits_off;    /* SCH_NONE for tries without property sets */
    uint8_t byte;
} sch_trie;

typedef struct smp_schema {
    sch_node *nodes;
    uint32_t n_nodes, cap_nodes;
    uint32_t *alts;
    uint32_t n_alts, cap_alts;
    sch_prop *props;
    uint32_t n_props, cap_props;
    int32_t *items;
    uint32_t n_items, cap_items;
    sch_trie *trie;
    uint32_t n_trie, cap_trie;
    uint64_t *bits;
    uint32_t n_bits, cap_bits;
    int32_t root;
} smp_schema;

/* smp_schema_compile and smp_schema_free: sampling.h. */

/* JSON mode (SMP_CONSTRAINT_JSON_OBJECT): the schema {"type":"object"}. Its
 * object is read as free JSON, so the output is exactly what JSON mode
 * allows: one object, nesting up to SMP_JSON_MAX_DEPTH, white space
 * limited. */
hearth_err smp_schema_json_object(smp_schema **out);

/* The trie child of t for byte c, SCH_NONE if none. */
uint32_t sch_trie_child(const smp_schema *s, uint32_t t, uint8_t c);

/* ---- the recognizer (json_schema_run.c) --------------------------------------- */

enum { /* sch_frame.kind */
       SCH_FR_ANY,
       SCH_FR_OBJECT,
       SCH_FR_ARRAY,
       SCH_FR_STRING,
       SCH_FR_NUMBER,
       SCH_FR_LITERAL
};

enum { SCH_OF_KEY = 1, SCH_OF_CHILD = 2, SCH_OF_EXTRA = 4 }; /* sch_frame.flags of an object */

/* One level of one reading: the schema node of a value being read. */
typedef struct sch_frame {
    uint16_t node;
    uint8_t kind;
    uint8_t flags;  /* object: reading a key, a key read (its value comes), additional */
    uint16_t count; /* object: next declared property; array: elements; string: characters;
                       any: the recognizer's depth at its start */
    uint16_t child; /* object: the node of the value of the key read */
    uint32_t pos;   /* trie position: key, enum string or number; SCH_NONE: off the trie */
    uint8_t esc;    /* a key's escape, for the canonical form */
    uint8_t integer;
    uint8_t pad[2];
} sch_frame;

/* The whole state: the JSON recognizer's (one for all readings: JSON's
 * syntax is deterministic) and each reading's stack of frames, readings
 * back to back. Only the first smp_sstate_size() bytes matter and they are
 * canonical (unused fields zero), so equal prefixes compare equal. */
typedef struct smp_sstate {
    smp_json lex;
    uint8_t n_threads;
    uint8_t pad;
    uint16_t n_frames;
    uint8_t depth[SMP_SCHEMA_MAX_THREADS]; /* frames of each reading */
    sch_frame frames[SMP_SCHEMA_MAX_FRAMES];
} smp_sstate;

static inline size_t smp_sstate_size(const smp_sstate *st) {
    return offsetof(smp_sstate, frames) + st->n_frames * sizeof(sch_frame);
}

/* Before the value (white space limited as in JSON mode). */
void smp_sstate_init(smp_sstate *st);
/* *dst = *src after byte c (dst != src): false when no valid completion
 * starts with the bytes so far plus c (dst is then unspecified). */
bool smp_sstate_step(const smp_schema *s, smp_sstate *dst, const smp_sstate *src, uint8_t c);
/* Feeds n bytes: true with *st advanced, false with *st unchanged. */
bool smp_sstate_feed(const smp_schema *s, smp_sstate *st, const void *bytes, size_t n);
void smp_sstate_copy(smp_sstate *dst, const smp_sstate *src);
/* The value is complete; only white space may follow. */
bool smp_sstate_done(const smp_sstate *st);
/* The bytes so far are a complete valid value if nothing follows (done,
 * or a top-level number that may end here). */
bool smp_sstate_can_end(const smp_schema *s, const smp_sstate *st);

/* ---- the constraint over a vocabulary (json_schema_mask.c) ---------------- */

/* The constraint of one sampler: the recognizer's state over the output so
 * far and the set of tokens allowed next, a bit mask over the vocabulary
 * (bit id % 32 of word id / 32). A token is allowed iff its
 * bytes are non-empty (at most SMP_VOCAB_PIECE_MAX) and keep the output
 * completable, or it is an end-of-generation token and the output is
 * complete as it stands. */
typedef struct smp_schemac smp_schemac;

/* Takes ownership of schema (freed with the constraint, also on failure);
 * vocab is borrowed and must outlive it. */
hearth_err smp_schemac_new(const smp_vocab *vocab, smp_schema *schema, smp_schemac **out);
void smp_schemac_free(smp_schemac *c);
void smp_schemac_reset(smp_schemac *c);
const uint32_t *smp_schemac_mask(smp_schemac *c, int32_t *n_allowed);
bool smp_schemac_advance(smp_schemac *c, int32_t id);
bool smp_schemac_done(const smp_schemac *c);

#endif
