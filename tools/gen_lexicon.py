#!/usr/bin/python3
"""Generates data/lexicon/wordnet_lexicon.txt from the WordNet 3.0 database.

The semantic cache uses the lexicon to tell whether two prompts ask the same
thing ("book a hotel" / "reserve a hotel", "colour" / "color", "went" / "go")
and to veto antonyms ("increase" / "decrease"). See data/lexicon/README.md.

Reads the Princeton WordNet 3.0 files (Debian package wordnet-base):
index.{noun,verb,adj,adv}, data.{noun,verb,adj,adv}, {noun,verb,adj,adv}.exc
and cntlist.rev; formats in wndb(5WN) and cntlist(5WN). Standard library
only; the output depends on nothing but the input files (byte-identical on
every run).

  /usr/bin/python3 tools/gen_lexicon.py [/usr/share/wordnet] [--out PATH]

Words: the lowercase ASCII-alphabetic single-word lemmas of WordNet; a hyphen
inside a lemma is dropped ("e-mail" -> "email", merged with "email" if both
exist); collocations ("hot_dog"), digits and other punctuation are skipped.

Output format (the C++ parser, src/semantic/lexicon.cc, reads exactly this):
one record a line, fields separated by one space; '#' starts a comment line;
empty lines are ignored. A line "[name]" starts a section; the sections come
in this order, [lemmas] first because the others may only name its words.

  [lemmas]      word [synset...]  every lemma, sorted. The synsets are
                dense ids (0..N-1, ascending) of the word's frequent senses:
                of each part of speech, the first --max-senses senses that
                SemCor tagged (index order is frequency order), or the first
                sense when none is tagged. A synset is written only when at
                least two words keep it, so a word without ids is still a
                lemma, for lemmatization. Two words sharing an id are
                synonyms.
  [antonyms]    a b               direct antonyms (lexical '!' pointers),
                                  a < b.
  [exceptions]  inflected base    irregular forms from *.exc whose base is a
                lemma; one base per form, verb.exc before noun.exc, adj.exc,
                adv.exc ("saw" -> "see", "better" -> "good"), except forms
                much more frequent than the base ("ground"). Also -ing/-ed
                lemmas that are forms of a verb ("making" -> "make",
                "reserved" -> "reserve"; see find_inflections), and "does"
                -> "do".
  [spellings]   variant canonical  spelling variants that WordNet puts in a
                common synset (colour/color, organise/organize, centre/center,
                catalog/catalogue); canonical is the form SemCor tags more
                often, mostly the American one.
  [derivations] a b               derivationally related words (lexical '+'
                pointers: "reservation" / "reserve"), a < b.
"""

import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "data", "lexicon", "wordnet_lexicon.txt")
POS = ("noun", "verb", "adj", "adv")
# Exception lists are consulted in this order; the first base wins, so the
# common irregular verbs ("saw" -> "see", "left" -> "leave") win over nouns.
EXC_ORDER = ("verb", "noun", "adj", "adv")
# Irregular forms missing from verb.exc whose suffix rules would pick another
# lemma ("does" -> "doe").
EXTRA_EXCEPTIONS = (("does", "do"),)
WORD_RE = re.compile(r"^[a-z]+(?:-[a-z]+)*$")
# Adjective syntactic markers in data.adj: "galore(ip)".
MARKER_RE = re.compile(r"\((?:a|p|ip)\)$")

# Substring substitutions between British and American spellings, tried both
# ways at every position. A pair is kept only when both are lemmas sharing a
# synset, so these may be loose; which side is canonical is decided from the
# data (see find_spellings).
SPELLING_RULES = (
    ("our", "or"),  # colour, behaviour, favourite
    ("is", "iz"),  # organise, organisation
    ("ys", "yz"),  # analyse, paralyse
    ("tre", "ter"),  # centre, theatre, litre
    ("ogue", "og"),  # catalogue, analogue
    ("ence", "ense"),  # defence, licence
    ("ae", "e"),  # anaemia, paediatric
    ("oe", "e"),  # oestrogen, diarrhoea
    ("oeuvre", "euver"),  # manoeuvre
    ("ll", "l"),  # traveller, fulfil, enrol
    ("ellery", "elry"),  # jewellery
    ("mme", "m"),  # programme
    ("que", "ck"),  # cheque
    ("ey", "ay"),  # grey
    ("ey", "y"),  # storey
    ("yre", "ire"),  # tyre
    ("ough", "ow"),  # plough
    ("sc", "sk"),  # sceptic
    ("ould", "old"),  # mould, smoulder
    ("ium", "um"),  # aluminium
    ("aero", "air"),  # aeroplane
)


def norm(word):
    """Lemma spelling used in the lexicon, or None if the word is skipped."""
    word = MARKER_RE.sub("", word.lower())
    if not WORD_RE.match(word):
        return None
    return word.replace("-", "")


def data_lines(path):
    """Non-licence lines of a WordNet file (the licence lines start with two
    spaces)."""
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.startswith("  "):
                yield line


def read_index(wn, max_senses):
    """Returns (senses, kept, tags, verb_tags).

    senses: word -> set of (pos, offset), every sense.
    kept: word -> set of (pos, offset), the frequent senses.
    tags: word -> number of tagged senses over all parts of speech.
    verb_tags: verb -> number of tagged verb senses.
    """
    senses, kept, tags, verb_tags = {}, {}, {}, {}
    for pos in POS:
        for line in data_lines(os.path.join(wn, "index." + pos)):
            f = line.split()
            word = norm(f[0])
            if word is None:
                continue
            synset_cnt, p_cnt = int(f[2]), int(f[3])
            tagsense_cnt = int(f[5 + p_cnt])
            offsets = f[6 + p_cnt:]
            if len(offsets) != synset_cnt:
                sys.exit("bad index line: " + line)
            keys = [(pos, o) for o in offsets]
            senses.setdefault(word, set()).update(keys)
            frequent = keys[:min(tagsense_cnt, max_senses)] or keys[:1]
            kept.setdefault(word, set()).update(frequent)
            tags[word] = tags.get(word, 0) + tagsense_cnt
            if pos == "verb":
                verb_tags[word] = verb_tags.get(word, 0) + tagsense_cnt
    return senses, kept, tags, verb_tags


def read_data(wn):
    """Returns (words, antonyms, derivations, participles).

    words: (pos, offset) -> list of member words in synset order (None for
    skipped ones, so that word numbers stay aligned).
    antonyms, derivations, participles ('<', adjective -> verb): sets of
    (a, b) with a < b.
    """
    # data.adj marks satellites as 's' but pointers name them 'a' or 's'.
    pos_of = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}
    words, pointers = {}, []
    for pos in POS:
        for line in data_lines(os.path.join(wn, "data." + pos)):
            f = line.split(" | ")[0].split()
            offset, w_cnt = f[0], int(f[3], 16)
            members = [norm(f[4 + 2 * i]) for i in range(w_cnt)]
            words[(pos, offset)] = members
            i = 4 + 2 * w_cnt
            p_cnt = int(f[i])
            for j in range(p_cnt):
                sym, target, tpos, st = f[i + 1 + 4 * j:i + 5 + 4 * j]
                if sym in ("!", "+", "<") and st != "0000":
                    pointers.append((sym, (pos, offset), int(st[:2], 16),
                                     (pos_of[tpos], target), int(st[2:], 16)))
    relations = {"!": set(), "+": set(), "<": set()}
    for sym, src, src_word, dst, dst_word in pointers:
        a = words[src][src_word - 1]
        b = words[dst][dst_word - 1]
        if a is not None and b is not None and a != b:
            relations[sym].add((min(a, b), max(a, b)))
    return words, relations["!"], relations["+"], relations["<"]


def read_counts(wn):
    """word -> times SemCor tagged any of its senses (cntlist.rev)."""
    counts = {}
    for line in data_lines(os.path.join(wn, "cntlist.rev")):
        sense_key, _, count = line.split()
        word = norm(sense_key.split("%")[0])
        if word is not None:
            counts[word] = counts.get(word, 0) + int(count)
    return counts


def read_exceptions(wn, lemmas, counts):
    """inflected form -> base, for single-word forms whose base is a lemma.

    lemmas: word -> its parts of speech; counts: see read_counts.

    A form that is a word in its own right is left alone when it is listed as
    its own base too ("feed feed fee"), is far more frequent than its base
    ("ground" / "grind", "data" / "datum"), or is listed as a noun, adjective
    or adverb but is a lemma of other parts of speech only ("flatter" /
    "flat" in adj.exc: "flatter" is a verb).
    """
    exceptions = {}
    for pos in EXC_ORDER:
        for line in data_lines(os.path.join(wn, pos + ".exc")):
            f = [norm(w) for w in line.split()]
            form, bases = f[0], [b for b in f[1:] if b in lemmas]
            if form is None or not bases or form in exceptions:
                continue
            own = form in bases or (form in lemmas and (
                counts.get(form, 0) > 2 * counts.get(bases[0], 0) or
                (pos != "verb" and pos not in lemmas[form])))
            exceptions[form] = None if own else bases[0]
    return {f: b for f, b in exceptions.items() if b is not None}


def is_vowel(c):
    return c in "aeiou"


def verb_bases(word):
    """Verbs that `word` may be the -ing or -ed form of, in the order the C++
    suffix rules try them ("hoping": "hope" before "hop")."""
    for suffix in ("ing", "ed"):
        stem = word[:-len(suffix)]
        if not word.endswith(suffix) or len(stem) < 2:
            continue
        if suffix == "ed" and len(stem) >= 3 and stem.endswith("i"):
            yield stem[:-1] + "y"  # "studied"
        if len(stem) >= 3 and stem[-1] == stem[-2] and not is_vowel(stem[-1]):
            yield stem  # "added"
            yield stem[:-1]  # "stopped"
        elif (not is_vowel(stem[-1]) and stem[-1] not in "wxy" and
              is_vowel(stem[-2]) and
              (len(stem) == 2 or not is_vowel(stem[-3]))):
            yield stem + "e"  # "hoped"
            yield stem
        else:
            yield stem  # "opened"
            yield stem + "e"  # "agreed"


def find_inflections(senses, verb_tags, related):
    """-ing and -ed lemmas that are inflections of a verb -> the verb.

    "making" and "reserved" are lemmas (a noun, an adjective), so the suffix
    rules would leave them alone. They become exceptions when WordNet relates
    the two words (derivation or participle pointer: "making" / "make"), or
    the verb has a tagged sense and the word ends in -ing ("learning") or is
    an adjective but no verb ("reserved", "limited"); not "evening" / "even"
    (untagged verb), "seed" / "see" (a verb itself), "moped" / "mop" (no
    adjective).
    """
    poses = {}
    for word, keys in senses.items():
        poses[word] = {pos for pos, _ in keys}
    out = {}
    for word in sorted(senses):
        for base in verb_bases(word):
            if base == word or base not in verb_tags:
                continue
            if ((min(word, base), max(word, base)) in related or
                (verb_tags[base] > 0 and
                 (word.endswith("ing") or
                  ("adj" in poses[word] and "verb" not in poses[word])))):
                out[word] = base
                break
    return out


def find_spellings(senses, tags, words):
    """variant -> canonical spelling, for the pairs SPELLING_RULES find.

    The canonical form of a group of variants is the one SemCor tags most
    often (WordNet and SemCor are American); on a tie, the one listed first
    in their common synsets more often; then the American side of the rule.
    """
    rank = {}  # (word, synset) -> position of the word in the synset
    for key, members in words.items():
        for i, w in enumerate(members):
            if w is not None:
                rank.setdefault((w, key), i)
    group = {}  # union-find over variant pairs

    def find_root(w):
        while group.get(w, w) != w:
            w = group[w]
        return w

    wins = {}
    for word in sorted(senses):
        for british, american in SPELLING_RULES:
            for old, new in ((british, american), (american, british)):
                start = word.find(old)
                while start != -1:
                    other = word[:start] + new + word[start + len(old):]
                    start = word.find(old, start + 1)
                    shared = senses.get(other, set()) & senses[word]
                    if other == word or not shared or other < word:
                        continue  # each unordered pair once
                    by_rank = sum(rank.get((other, k), 99) -
                                  rank.get((word, k), 99) for k in shared)
                    by_rule = 1 if old == british else -1  # other: American
                    winner = word if (by_rank, -by_rule) > (0, 0) else other
                    wins[winner] = wins.get(winner, 0) + 1
                    group.setdefault(word, word)
                    group.setdefault(other, other)
                    group[find_root(word)] = find_root(other)
    members = {}
    for w in sorted(group):
        members.setdefault(find_root(w), []).append(w)
    canonical = {}
    for variants in members.values():
        best = max(sorted(variants), key=lambda w: (tags[w], wins.get(w, 0)))
        for w in variants:
            if w != best:
                canonical[w] = best
    return canonical


def generate(wn, max_senses, with_derivations):
    senses, kept, tags, verb_tags = read_index(wn, max_senses)
    words, antonyms, derivations, participles = read_data(wn)
    lemmas = set(senses)
    antonyms = {p for p in antonyms if p[0] in lemmas and p[1] in lemmas}
    derivations = {
        p for p in derivations
        if p[0] in lemmas and p[1] in lemmas and p not in antonyms
    }
    poses = {w: {pos for pos, _ in keys} for w, keys in senses.items()}
    exceptions = read_exceptions(wn, poses, read_counts(wn))
    inflections = find_inflections(senses, verb_tags,
                                   derivations | participles)
    for word, base in sorted(inflections.items()):
        exceptions.setdefault(word, base)
    for word, base in EXTRA_EXCEPTIONS:
        if base in lemmas:
            exceptions.setdefault(word, base)
    spellings = find_spellings(senses, tags, words)

    # Dense ids for the synsets kept by at least two words.
    holders = {}
    for word, keys in kept.items():
        for key in keys:
            holders.setdefault(key, []).append(word)
    shared = sorted((POS.index(k[0]), k[1]) for k, h in holders.items()
                    if len(h) >= 2)
    dense = {(POS[p], o): i for i, (p, o) in enumerate(shared)}

    out = [
        "# promptcache lexicon, derived from WordNet 3.0 by",
        "# tools/gen_lexicon.py (max_senses=%d). WordNet 3.0 Copyright 2006 by"
        % max_senses,
        "# Princeton University; licence: data/lexicon/LICENSE-WordNet.txt.",
        "# %d lemmas, %d synsets, %d antonyms, %d exceptions, %d spellings,"
        % (len(lemmas), len(dense), len(antonyms), len(exceptions),
           len(spellings)),
        "# %d derivations." % (len(derivations) if with_derivations else 0),
        "[lemmas]",
    ]
    for word in sorted(lemmas):
        ids = sorted(dense[k] for k in kept[word] if k in dense)
        out.append(" ".join([word] + [str(i) for i in ids]))
    out.append("[antonyms]")
    out.extend("%s %s" % p for p in sorted(antonyms))
    out.append("[exceptions]")
    out.extend("%s %s" % (f, b) for f, b in sorted(exceptions.items()))
    out.append("[spellings]")
    out.extend("%s %s" % (b, a) for b, a in sorted(spellings.items()))
    out.append("[derivations]")
    if with_derivations:
        out.extend("%s %s" % p for p in sorted(derivations))
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("wordnet", nargs="?", default="/usr/share/wordnet",
                        help="directory with index.noun, data.noun, ...")
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--max-senses", type=int, default=3,
                        help="frequent senses kept per part of speech")
    parser.add_argument("--no-derivations", action="store_true")
    args = parser.parse_args()
    text = generate(args.wordnet, args.max_senses, not args.no_derivations)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="ascii", newline="\n") as f:
        f.write(text)
    print("wrote %s (%d bytes)" % (args.out, len(text)))


if __name__ == "__main__":
    main()
