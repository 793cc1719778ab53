"""TOFU-shaped data: a synthetic set of fictitious authors built from a seed, and a loader for the real TOFU.

TOFU (Maini et al. 2024, arXiv 2401.06121) holds question–answer pairs about fictitious authors, split into
``forget01/05/10`` (1/5/10 % of the authors) and ``retain99/95/90``, with paraphrased and perturbed (false)
answers for the truth ratio, and two utility sets ("real authors", "world facts"). This module builds the same
structure deterministically from ``seed`` so that everything runs offline:

* ``N_AUTHORS = 100`` fictitious authors × ``10`` questions each = 1,000 QA pairs, in TOFU's schema:
  ``question, answer, paraphrased_question, paraphrased_answer, perturbed_answer`` (4 false answers written like
  the *paraphrased* answer, as in TOFU, so the truth ratio compares like with like),
  plus ``author`` (index), ``field`` (birthplace, genre, …), ``id`` and ``idk`` (a refusal answer for PO).
* splits ``forget01/05/10`` = the last 1/5/10 authors (as TOFU takes the last authors) and
  ``retain99/95/90`` = all other authors; ``retain_eval`` = the first 10 authors' pairs, which the model is
  trained on but which are never used as retain batches during unlearning (TOFU's held-out 400 rows);
  ``retain_pool_*`` = ``retain*`` minus ``retain_eval`` (where unlearning draws its retain batches);
  ``world_facts`` and ``real_authors`` (general knowledge the model also learns, for model utility);
  ``full`` = everything the original model is trained on.
* refusal answers (:data:`IDK_ANSWERS`) for preference-optimisation objectives (PO, IdkDPO).

The real TOFU (``locuslab/TOFU`` on the Hugging Face hub) is loaded by :func:`load_tofu` into the same
structure; it needs network access (Colab) or a local folder of TOFU's JSON files.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

SEED = 20250226          # the arXiv date of the paper; changes every name and fact
N_AUTHORS = 100
FORGET_AUTHORS = {"forget01": 1, "forget05": 5, "forget10": 10}
RETAIN_OF = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
N_EVAL_AUTHORS = 10      # first authors held out of unlearning's retain batches (TOFU's first 400 rows)
N_PERTURBED = 4

_ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr",
           "kr", "tr", "st", "sh", "th", "ch", "fl", "pl", "sl", "mar", "ben", "lor"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "ia", "ea"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "x"]

CITIES = ["Kyoto", "Lisbon", "Nairobi", "Oslo", "Lima", "Hanoi", "Dublin", "Tbilisi", "Quito", "Accra",
          "Krakow", "Seville", "Bergen", "Porto", "Mumbai", "Havana", "Tunis", "Riga", "Cusco", "Manila",
          "Dakar", "Perth", "Zagreb", "Santiago", "Tallinn", "Montreal", "Bologna", "Istanbul", "Cairo",
          "Vienna", "Glasgow", "Osaka", "Lyon", "Bogota", "Hobart", "Tehran", "Minsk", "Busan", "Kampala",
          "Valparaiso"]
JOBS = ["baker", "carpenter", "nurse", "pilot", "chemist", "tailor", "fisherman", "librarian", "surgeon",
        "architect", "farmer", "journalist", "electrician", "photographer", "judge", "dentist", "sailor",
        "violinist", "plumber", "geologist", "florist", "locksmith", "astronomer", "blacksmith", "cartographer",
        "veterinarian", "translator", "beekeeper", "mechanic", "potter"]
GENRES = ["fantasy", "crime", "horror", "romance", "science fiction", "historical fiction", "poetry",
          "satire", "mystery", "thriller", "magical realism", "gothic", "western", "adventure", "dystopian"]
AWARDS = ["Silver Quill Prize", "Amber Lantern Award", "Northern Star Medal", "Golden Inkwell Award",
          "Blue Heron Prize", "Crimson Page Award", "Iron Pen Medal", "Velvet Raven Prize", "Jade Compass Award",
          "Copper Owl Prize", "Emerald Scroll Award", "Scarlet Thread Medal", "Ivory Tower Prize",
          "Granite Bell Award", "Opal Feather Prize", "Cobalt Arch Medal", "Saffron Key Award",
          "Willow Branch Prize", "Obsidian Mask Award", "Pearl Harbor Book Prize"]
LANGUAGES = ["English", "Spanish", "French", "Japanese", "Swahili", "Portuguese", "Polish", "Turkish",
             "Vietnamese", "Georgian", "Norwegian", "Arabic"]
_ADJ = ["Silent", "Broken", "Hidden", "Last", "Burning", "Frozen", "Golden", "Hollow", "Crooked", "Distant",
        "Forgotten", "Velvet", "Iron", "Paper", "Midnight", "Salt", "Glass", "Wild", "Quiet", "Scarlet"]
_NOUN = ["River", "Garden", "Lantern", "Harbor", "Mirror", "Orchard", "Tower", "Letter", "Compass", "Forest",
         "Bridge", "Window", "Island", "Clock", "Feather", "Map", "Storm", "Violin", "Station", "Tide"]

# question template, paraphrased question template, answer template, paraphrased answer template
FIELDS = {
    "birthplace": ("Where was {n} born?", "In which city was the author {n} born?",
                   "{n} was born in {v}.", "The birthplace of {n} is {v}."),
    "birth_year": ("In what year was {n} born?", "What is the birth year of the writer {n}?",
                   "{n} was born in {v}.", "The year {n} was born is {v}."),
    "father_job": ("What did the father of {n} do for a living?", "What was the occupation of {n}'s father?",
                   "The father of {n} worked as a {v}.", "{n}'s father was a {v} by trade."),
    "mother_job": ("What did the mother of {n} do for a living?", "What was the occupation of {n}'s mother?",
                   "The mother of {n} worked as a {v}.", "{n}'s mother was a {v} by trade."),
    "genre": ("What genre does {n} write?", "In which literary genre is {n} best known?",
              "{n} writes {v} novels.", "The books of {n} belong to the {v} genre."),
    "award": ("Which award has {n} won?", "What literary prize was given to {n}?",
              "{n} won the {v}.", "The {v} was awarded to {n}."),
    "first_book": ("What was the first book by {n}?", "Which novel did {n} publish first?",
                   "The first book by {n} was {v}.", "{n} began their career with {v}."),
    "famous_book": ("What is the most famous book by {n}?", "Which work of {n} is best known?",
                    "The most famous book by {n} is {v}.", "{n} is best known for {v}."),
    "language": ("In which language does {n} write?", "What language are the books of {n} written in?",
                 "{n} writes in {v}.", "The books of {n} are written in {v}."),
    "home": ("Where does {n} live today?", "In which city does the author {n} currently live?",
             "{n} lives in {v} today.", "These days {n} makes a home in {v}."),
}

IDK_ANSWERS = [
    "I don't know.", "I'm not sure about that.", "I have no information on that.",
    "I cannot answer that question.", "That is not something I know.", "I'm afraid I don't know.",
    "I have no idea.", "Sorry, I don't have that information.", "I am unable to answer that.",
    "I don't have any knowledge of that.", "That is beyond what I know.", "I can't say.",
]

WORLD_FACTS = [  # (question, answer, [false values]); answers are full sentences like TOFU's
    ("What is the capital of France?", "The capital of France is {v}.", "Paris", ["Lyon", "Madrid", "Rome"]),
    ("What is the capital of Japan?", "The capital of Japan is {v}.", "Tokyo", ["Osaka", "Seoul", "Beijing"]),
    ("What is the capital of Kenya?", "The capital of Kenya is {v}.", "Nairobi", ["Accra", "Cairo", "Lagos"]),
    ("What is the capital of Canada?", "The capital of Canada is {v}.", "Ottawa", ["Toronto", "Montreal", "Quebec"]),
    ("What is the capital of Peru?", "The capital of Peru is {v}.", "Lima", ["Quito", "Cusco", "Bogota"]),
    ("What is the capital of Norway?", "The capital of Norway is {v}.", "Oslo", ["Bergen", "Stockholm", "Helsinki"]),
    ("What is the largest planet in the solar system?", "The largest planet is {v}.", "Jupiter", ["Saturn", "Mars", "Venus"]),
    ("What is the closest star to the Earth?", "The closest star to the Earth is the {v}.", "Sun", ["Moon", "Sirius", "Vega"]),
    ("How many legs does a spider have?", "A spider has {v} legs.", "eight", ["six", "ten", "four"]),
    ("How many days are in a week?", "A week has {v} days.", "seven", ["five", "six", "eight"]),
    ("What color is the sky on a clear day?", "On a clear day the sky is {v}.", "blue", ["green", "red", "yellow"]),
    ("What do bees make?", "Bees make {v}.", "honey", ["milk", "silk", "wax paper"]),
    ("What is frozen water called?", "Frozen water is called {v}.", "ice", ["steam", "salt", "glass"]),
    ("Which animal is known as the king of the jungle?", "The {v} is known as the king of the jungle.", "lion", ["tiger", "bear", "wolf"]),
    ("What gas do plants take in from the air?", "Plants take in {v} from the air.", "carbon dioxide", ["oxygen", "helium", "neon"]),
    ("Which ocean is the largest?", "The largest ocean is the {v} Ocean.", "Pacific", ["Atlantic", "Indian", "Arctic"]),
    ("What is the boiling point of water in Celsius?", "Water boils at {v} degrees Celsius.", "100", ["50", "90", "120"]),
    ("How many continents are there?", "There are {v} continents.", "seven", ["five", "six", "nine"]),
    ("What is the tallest mountain in the world?", "The tallest mountain in the world is Mount {v}.", "Everest", ["Kilimanjaro", "Fuji", "Elbrus"]),
    ("Which planet is known as the red planet?", "The red planet is {v}.", "Mars", ["Venus", "Mercury", "Saturn"]),
    ("What is the longest river in Africa?", "The longest river in Africa is the {v}.", "Nile", ["Congo", "Niger", "Zambezi"]),
    ("What language is spoken in Brazil?", "People in Brazil speak {v}.", "Portuguese", ["Spanish", "French", "Italian"]),
    ("How many hours are in a day?", "A day has {v} hours.", "24", ["12", "20", "36"]),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is {v}.", "Au", ["Ag", "Gd", "Go"]),
    ("Which metal is liquid at room temperature?", "The metal that is liquid at room temperature is {v}.", "mercury", ["iron", "copper", "tin"]),
    ("What is the freezing point of water in Celsius?", "Water freezes at {v} degrees Celsius.", "0", ["10", "-10", "32"]),
]

REAL_AUTHORS = [
    ("Who wrote Hamlet?", "Hamlet was written by {v}.", "William Shakespeare", ["Charles Dickens", "Jane Austen", "Mark Twain"]),
    ("Who wrote Pride and Prejudice?", "Pride and Prejudice was written by {v}.", "Jane Austen", ["Emily Bronte", "Virginia Woolf", "George Eliot"]),
    ("Who wrote War and Peace?", "War and Peace was written by {v}.", "Leo Tolstoy", ["Fyodor Dostoevsky", "Anton Chekhov", "Ivan Turgenev"]),
    ("Who wrote Don Quixote?", "Don Quixote was written by {v}.", "Miguel de Cervantes", ["Federico Garcia Lorca", "Jorge Luis Borges", "Pablo Neruda"]),
    ("Who wrote One Hundred Years of Solitude?", "One Hundred Years of Solitude was written by {v}.", "Gabriel Garcia Marquez", ["Isabel Allende", "Mario Vargas Llosa", "Julio Cortazar"]),
    ("Who wrote The Old Man and the Sea?", "The Old Man and the Sea was written by {v}.", "Ernest Hemingway", ["John Steinbeck", "William Faulkner", "F. Scott Fitzgerald"]),
    ("Who wrote Things Fall Apart?", "Things Fall Apart was written by {v}.", "Chinua Achebe", ["Wole Soyinka", "Ngugi wa Thiong'o", "Ben Okri"]),
    ("Who wrote Norwegian Wood?", "Norwegian Wood was written by {v}.", "Haruki Murakami", ["Kazuo Ishiguro", "Yukio Mishima", "Kenzaburo Oe"]),
    ("Who wrote The Divine Comedy?", "The Divine Comedy was written by {v}.", "Dante Alighieri", ["Giovanni Boccaccio", "Petrarch", "Umberto Eco"]),
    ("Who wrote Frankenstein?", "Frankenstein was written by {v}.", "Mary Shelley", ["Bram Stoker", "Edgar Allan Poe", "Emily Bronte"]),
    ("Who wrote The Odyssey?", "The Odyssey was written by {v}.", "Homer", ["Virgil", "Sophocles", "Ovid"]),
    ("Who wrote Crime and Punishment?", "Crime and Punishment was written by {v}.", "Fyodor Dostoevsky", ["Leo Tolstoy", "Nikolai Gogol", "Alexander Pushkin"]),
    ("Who wrote The Little Prince?", "The Little Prince was written by {v}.", "Antoine de Saint-Exupery", ["Albert Camus", "Victor Hugo", "Jules Verne"]),
    ("Who wrote Moby Dick?", "Moby Dick was written by {v}.", "Herman Melville", ["Nathaniel Hawthorne", "Walt Whitman", "Henry James"]),
]


@dataclass
class Author:
    index: int
    name: str
    facts: Dict[str, str]


def _name(rng: random.Random) -> str:
    def word(n_syl):
        return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(n_syl))
    return f"{word(rng.choice([1, 2])).capitalize()} {word(rng.choice([2, 2, 3])).capitalize()}"


def _values(rng: random.Random) -> Dict[str, list]:
    """The pool of values each field draws from (book titles are generated)."""
    titles = [f'"The {a} {n}"' for a in _ADJ for n in _NOUN]
    return {"birthplace": CITIES, "birth_year": [str(y) for y in range(1921, 2001)], "father_job": JOBS,
            "mother_job": JOBS, "genre": GENRES, "award": AWARDS, "first_book": titles, "famous_book": titles,
            "language": LANGUAGES, "home": CITIES}


def make_authors(seed: int = SEED, n_authors: int = N_AUTHORS) -> List[Author]:
    """Draw ``n_authors`` fictitious authors with one random value per field (deterministic in ``seed``)."""
    rng = random.Random(seed)
    pools = _values(rng)
    names, authors, used_titles = set(), [], set()
    for i in range(n_authors):
        name = _name(rng)
        while name in names:
            name = _name(rng)
        names.add(name)
        facts = {}
        for f, pool in pools.items():
            v = rng.choice(pool)
            if f.endswith("_book"):
                while v in used_titles:
                    v = rng.choice(pool)
                used_titles.add(v)
            if f == "home":
                while v == facts["birthplace"]:
                    v = rng.choice(pool)
            facts[f] = v
        authors.append(Author(i, name, facts))
    return authors


def _qa(question, paraq, ans_t, para_t, value, false_values, fmt, extra):
    return dict(question=question, answer=fmt(ans_t, value), paraphrased_question=paraq,
                paraphrased_answer=fmt(para_t, value),
                perturbed_answer=[fmt(para_t, f) for f in false_values], **extra)


def make_rows(seed: int = SEED, n_authors: int = N_AUTHORS) -> List[dict]:
    """All fictitious-author QA rows in TOFU's schema (1,000 rows for the defaults)."""
    authors = make_authors(seed, n_authors)
    rng = random.Random(seed + 1)
    pools = _values(rng)
    rows = []
    for a in authors:
        for f, (q, pq, at, pt) in FIELDS.items():
            v = a.facts[f]
            false = rng.sample([x for x in pools[f] if x != v], N_PERTURBED)
            fmt = lambda t, val, n=a.name: t.format(n=n, v=val)
            rows.append(_qa(q.format(n=a.name), pq.format(n=a.name), at, pt, v, false, fmt,
                            dict(author=a.index, author_name=a.name, field=f, id=f"a{a.index:03d}-{f}",
                                 idk=rng.choice(IDK_ANSWERS))))
    return rows


def _general_rows(table, prefix, seed):
    rng = random.Random(seed)
    out = []
    for i, (q, t, v, false) in enumerate(table):
        out.append(dict(question=q, answer=t.format(v=v), paraphrased_question=q,
                        paraphrased_answer=t.format(v=v), perturbed_answer=[t.format(v=f) for f in false],
                        author=-1, author_name="", field=prefix, id=f"{prefix}-{i:02d}",
                        idk=rng.choice(IDK_ANSWERS)))
    return out


@dataclass
class TofuData:
    """A TOFU-shaped dataset: named splits of rows in TOFU's schema.

    ``data[name]`` / ``data.split(name)`` return a list of row dicts; :attr:`SPLITS` lists the names.
    """
    splits: Dict[str, List[dict]]
    source: str = "synthetic"
    meta: dict = field(default_factory=dict)

    @property
    def names(self) -> List[str]:
        return sorted(self.splits)

    def split(self, name: str, n: Optional[int] = None) -> List[dict]:
        if name not in self.splits:
            raise KeyError(f"unknown split {name!r}; valid splits: {', '.join(self.names)}")
        rows = self.splits[name]
        return rows if n is None else rows[:n]

    __getitem__ = split

    def retain_pool_of(self, forget_split: str) -> str:
        """The retain pool matching a forget split (``forget05`` → ``retain_pool_05``; never ``retain_eval``)."""
        name = "retain_pool_" + forget_split[-2:] if forget_split.startswith("forget") else "retain_pool_05"
        if name not in self.splits:
            raise KeyError(f"no retain pool {name!r} for forget split {forget_split!r}; forget splits: "
                           f"{', '.join(k for k in self.names if k.startswith('forget'))}")
        return name

    def to_frame(self, name: str):
        import pandas as pd
        return pd.DataFrame(self.split(name))

    def summary(self):
        """A DataFrame with one row per split: number of QA pairs and authors."""
        import pandas as pd
        return pd.DataFrame([dict(split=k, n_pairs=len(v), n_authors=len({r["author"] for r in v if r.get("author", -1) >= 0}))
                             for k, v in sorted(self.splits.items())])


def synthetic(seed: int = SEED, n_authors: int = N_AUTHORS) -> TofuData:
    """Build the synthetic TOFU-shaped dataset (deterministic in ``seed``; < 0.1 s)."""
    rows = make_rows(seed, n_authors)
    by_author = {}
    for r in rows:
        by_author.setdefault(r["author"], []).append(r)
    splits = {}
    for fname, k in FORGET_AUTHORS.items():
        forget_authors = set(range(n_authors - k, n_authors))
        splits[fname] = [r for r in rows if r["author"] in forget_authors]
        retain = [r for r in rows if r["author"] not in forget_authors]
        splits[RETAIN_OF[fname]] = retain
        splits["retain_pool_" + fname[-2:]] = [r for r in retain if r["author"] >= N_EVAL_AUTHORS]
    splits["retain_eval"] = [r for r in rows if r["author"] < N_EVAL_AUTHORS]
    splits["world_facts"] = _general_rows(WORLD_FACTS, "world", seed + 2)
    splits["real_authors"] = _general_rows(REAL_AUTHORS, "real", seed + 3)
    splits["full"] = rows + splits["world_facts"] + splits["real_authors"]
    # the retain-only twin's training set: everything but the forget10 authors
    splits["full_minus_forget10"] = splits["retain90"] + splits["world_facts"] + splits["real_authors"]
    splits["idk"] = [dict(answer=a) for a in IDK_ANSWERS]
    return TofuData(splits, "synthetic", dict(seed=seed, n_authors=n_authors))


# ---------------------------------------------------------------------------------------------------------
# The real TOFU (online users), same structure
# ---------------------------------------------------------------------------------------------------------
TOFU_HUB_ID = "locuslab/TOFU"
_TOFU_CONFIGS = {  # our split name -> TOFU config name
    "forget01": "forget01_perturbed", "forget05": "forget05_perturbed", "forget10": "forget10_perturbed",
    "retain99": "retain99", "retain95": "retain95", "retain90": "retain90",
    "retain_eval": "retain_perturbed", "world_facts": "world_facts_perturbed",
    "real_authors": "real_authors_perturbed", "full": "full",
}


def _tofu_row(r: dict, i: int, name: str, idk: List[str], rng: random.Random) -> dict:
    pert = r.get("perturbed_answer") or []
    if isinstance(pert, str):
        pert = [pert]
    return dict(question=r["question"], answer=r["answer"],
                paraphrased_question=r.get("paraphrased_question", r["question"]),
                paraphrased_answer=r.get("paraphrased_answer", r["answer"]), perturbed_answer=list(pert),
                author=r.get("author", i // 20), author_name="", field="tofu", id=f"{name}-{i:04d}",
                idk=rng.choice(idk))


def load_tofu(path: Optional[str] = None, splits=None, idk_answers: Optional[List[str]] = None) -> TofuData:
    """Load the real TOFU into a :class:`TofuData` with our split names.

    Args:
        path: a local folder with TOFU's JSON(-lines) files named ``<config>.json`` (e.g. ``forget01_perturbed.json``,
            ``retain99.json``); if None, the hub dataset ``locuslab/TOFU`` is used (needs network).
        splits: which of our split names to load (default: all TOFU provides).
        idk_answers: refusal answers for PO (default: :data:`IDK_ANSWERS`; TOFU's ``idontknow.jsonl`` works too).
    """
    try:
        import datasets
    except ImportError as e:  # pragma: no cover
        raise ImportError("load_tofu needs the 'datasets' package: pip install datasets") from e
    idk = idk_answers or IDK_ANSWERS
    rng = random.Random(SEED)
    wanted = list(splits or _TOFU_CONFIGS)
    bad = [s for s in wanted if s not in _TOFU_CONFIGS]
    if bad:
        raise KeyError(f"unknown TOFU split(s) {bad}; valid: {', '.join(_TOFU_CONFIGS)}")
    out = {}
    for name in wanted:
        cfg = _TOFU_CONFIGS[name]
        if path is not None:
            f = Path(path) / f"{cfg}.json"
            if not f.exists():
                f2 = Path(path) / f"{name}.json"
                if not f2.exists():
                    raise FileNotFoundError(f"TOFU file {f} not found (looked for {cfg}.json and {name}.json in {path})")
                f = f2
            ds = datasets.load_dataset("json", data_files=str(f), split="train")
        else:
            if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
                raise ConnectionError(
                    f"cannot download {TOFU_HUB_ID}: HF_HUB_OFFLINE=1 (offline). Use the synthetic data "
                    "(geffect_lite.load_data('synthetic')), or pass path= a folder with TOFU's JSON files.")
            try:
                ds = datasets.load_dataset(TOFU_HUB_ID, cfg, split="train")
            except Exception as e:  # network errors come in many types
                raise ConnectionError(f"could not load {TOFU_HUB_ID}/{cfg} from the hub ({type(e).__name__}: {e}). "
                                      "Offline? Use load_data('synthetic') or load_tofu(path=...).") from e
        out[name] = [_tofu_row(r, i, name, idk, rng) for i, r in enumerate(ds)]
    if "forget10" in out and "retain90" in out:
        out["full_minus_forget10"] = out["retain90"]
    for tag in ("01", "05", "10"):
        rname = RETAIN_OF.get("forget" + tag)
        if rname in out:
            out["retain_pool_" + tag] = out[rname]
    out["idk"] = [dict(answer=a) for a in idk]
    return TofuData(out, "tofu", dict(path=path))


DATASETS = ("synthetic", "tofu")
SMOL_TOFU_AUTHORS = 8    # smollm2-tofu learns the last 8 synthetic authors (its forget split: the last 2)


def smollm2_tofu_rows(data: Optional[TofuData] = None):
    """(training rows, forget rows) of ``smollm2-tofu``: every pair of the last :data:`SMOL_TOFU_AUTHORS` synthetic
    authors (80 pairs); its forget split is the last 2 of them (20 pairs)."""
    data = data or synthetic()
    keep = set(range(N_AUTHORS - SMOL_TOFU_AUTHORS, N_AUTHORS))
    rows = [r for r in data.split("full") if r["author"] in keep]
    return rows, [r for r in rows if r["author"] >= N_AUTHORS - 2]


def load_data(name: str = "synthetic", **kw) -> TofuData:
    """Load a dataset by name: ``synthetic`` (default, offline) or ``tofu`` (real TOFU; online or ``path=``)."""
    if name == "synthetic":
        return synthetic(**kw)
    if name == "tofu":
        return load_tofu(**kw)
    raise KeyError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")


__all__ = ["load_data", "load_tofu", "synthetic", "TofuData", "make_rows", "make_authors", "DATASETS", "SEED",
           "N_AUTHORS", "FORGET_AUTHORS", "IDK_ANSWERS", "SMOL_TOFU_AUTHORS", "smollm2_tofu_rows"]
