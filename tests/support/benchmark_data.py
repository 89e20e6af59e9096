"""A small ARC-Easy in the Hub's own layout and schema (allenai/ai2_arc, config ARC-Easy).

The questions are written for these tests (not ARC's); the columns, nesting and file names are
the dataset's: id, question, choices {text, label}, answerKey, one parquet file per split.
"""

from __future__ import annotations

from pathlib import Path

# (question, choices, index of the right one)
QUESTIONS = [
    ("Which of these is a liquid at room temperature?", ["iron", "water", "salt", "wood"], 1),
    ("What do plants need from sunlight to make food?", ["heat", "energy", "sound", "wind"], 1),
    ("Which planet is closest to the Sun?", ["Mercury", "Venus", "Earth", "Mars"], 0),
    ("What is frozen water called?", ["steam", "ice", "fog", "dew"], 1),
    ("Which animal is a mammal?", ["shark", "frog", "whale", "trout"], 2),
    ("What force pulls objects toward Earth?", ["friction", "magnetism", "gravity", "light"], 2),
    ("Which tool measures temperature?", ["ruler", "scale", "thermometer", "clock"], 2),
    ("What gas do people breathe out?", ["oxygen", "carbon dioxide", "helium", "neon"], 1),
    ("Which of these is a renewable resource?", ["coal", "oil", "wind", "gas"], 2),
    ("What part of a plant takes in water?", ["roots", "petals", "seeds", "fruit"], 0),
    ("Which organ pumps blood?", ["lung", "heart", "liver", "skin"], 1),
    ("What makes a shadow?", ["blocked light", "sound", "heat", "water"], 0),
    ("Which is the largest ocean?", ["Atlantic", "Indian", "Arctic", "Pacific"], 3),
    ("What do bees make?", ["silk", "honey", "milk", "wool"], 1),
    ("Which state of matter has a fixed shape?", ["gas", "liquid", "solid", "plasma"], 2),
    ("What causes day and night?", ["Earth's spin", "the Moon", "clouds", "tides"], 0),
    ("Which material conducts electricity best?", ["rubber", "glass", "copper", "wood"], 2),
    ("What is the main source of energy for Earth?", ["the Moon", "the Sun", "wind", "soil"], 1),
    ("Which sense uses the nose?", ["sight", "taste", "hearing", "smell"], 3),
    ("What do caterpillars become?", ["beetles", "butterflies", "spiders", "ants"], 1),
    ("Which is a simple machine?", ["lever", "radio", "battery", "engine"], 0),
    ("What covers most of Earth's surface?", ["sand", "ice", "water", "forest"], 2),
    ("Which animal lays eggs?", ["dog", "chicken", "horse", "cow"], 1),
    ("What is melted rock from a volcano called?", ["lava", "sand", "clay", "chalk"], 0),
    ("Which season is usually coldest?", ["spring", "summer", "autumn", "winter"], 3),
    ("What do magnets attract?", ["plastic", "paper", "iron", "glass"], 2),
    ("Which body part helps you see?", ["ear", "eye", "nose", "hand"], 1),
    ("What does a seed grow into?", ["a rock", "a plant", "a cloud", "a shell"], 1),
    ("Which is the hottest?", ["ice", "boiling water", "snow", "rain"], 1),
    ("What do fish breathe with?", ["lungs", "gills", "fins", "scales"], 1),
    ("Which object floats on water?", ["a nail", "a coin", "a cork", "a stone"], 2),
    ("What is the Moon's light?", ["its own fire", "reflected sunlight", "lightning", "lava"], 1),
    ("Which food comes from a plant?", ["egg", "apple", "cheese", "fish"], 1),
    ("What does a compass point to?", ["east", "north", "south", "west"], 1),
    ("Which is a gas?", ["steam", "stone", "milk", "wood"], 0),
    ("What do roots anchor?", ["clouds", "plants", "rivers", "birds"], 1),
    ("Which unit measures length?", ["liter", "meter", "gram", "second"], 1),
    ("What animal has a shell and moves slowly?", ["snail", "deer", "hawk", "eel"], 0),
    ("Which is needed for a fire to burn?", ["oxygen", "nitrogen", "helium", "argon"], 0),
    (
        "What do we call animals that eat only plants?",
        ["carnivores", "herbivores", "fungi", "predators"],
        1,
    ),
]
SPLITS = {"train": range(0, 28), "validation": range(28, 34), "test": range(34, 40)}
LABELS = ["A", "B", "C", "D"]


def rows(indices) -> list[dict]:
    """ARC rows for these questions, in the dataset's schema."""
    out = []
    for i in indices:
        question, choices, right = QUESTIONS[i]
        out.append(
            {
                "id": f"postlab-test-{i}",
                "question": question,
                "choices": {"text": choices, "label": LABELS[: len(choices)]},
                "answerKey": LABELS[right],
            }
        )
    return out


def write_arc_easy(root: Path, leak_test_into_train: bool = False) -> Path:
    """The dataset's files under root/ARC-Easy/ (one test question copied into train when
    asked, to see decontamination remove it); returns root."""
    import datasets

    folder = root / "ARC-Easy"
    folder.mkdir(parents=True, exist_ok=True)
    for split, indices in SPLITS.items():
        chosen = list(indices)
        if split == "train" and leak_test_into_train:
            chosen.append(SPLITS["test"][0])
        datasets.Dataset.from_list(rows(chosen)).to_parquet(
            str(folder / f"{split}-00000-of-00001.parquet")
        )
    return root


# (question, worked answer ending "#### N"), in openai/gsm8k's style.
WORD_PROBLEMS = [
    (f"Sam has {a} apples and buys {b} more. How many apples does Sam have?",
     f"Sam has {a} + {b} = {a + b} apples.\n#### {a + b}")
    for a, b in [(3, 4), (5, 7), (12, 9), (8, 8), (20, 15), (6, 13), (11, 2), (9, 30), (14, 14),
                 (7, 25), (16, 3), (2, 40)]
]  # fmt: skip


def write_gsm8k(root: Path) -> Path:
    """openai/gsm8k's layout (config folder main/, a parquet file per split); returns root."""
    import datasets

    folder = root / "main"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"question": q, "answer": a} for q, a in WORD_PROBLEMS]
    for split, chosen in (("train", rows[:8]), ("test", rows[8:])):
        datasets.Dataset.from_list(chosen).to_parquet(
            str(folder / f"{split}-00000-of-00001.parquet")
        )
    return root
