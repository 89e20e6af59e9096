"""Write the held-out task folders the lab is checked on (deterministic; no network).

    python benchmarks/heldout/make_tasks.py OUT_DIR

- word_category: which of animal / fruit / tool a word names. The training file is skewed
  (about three rows in four say "animal"), validation and test are balanced and use words the
  training file never shows: plain SFT on it tends to answer "animal" to everything.
- shout: rewrite a short phrase in capital letters, exact match.
- phrase_edits: four edits of a phrase (capital letters, first word, last word, the words in
  reverse order), exact match; the edits are not equally hard, so misses gather by kind.
- above_500: whether a number is above 500. Nine training rows in ten say "yes"; validation and
  test are balanced: plain SFT on it learns to answer "yes" to everything.
- word_problems: one-step word problems (add or take away), numeric answers, no valid.jsonl.
- word_problems_500: the same kind, 520 training rows (a stretch reads 320, six read 1,920).
- two_step_small: word problems of two steps on small numbers (add then take away, take away
  then add, groups of equal size plus some more), numeric answers, no valid.jsonl.
- word_category_no_valid, above_500_no_valid: the two skewed folders without valid.jsonl, so
  validation is a slice of the skewed training file and only test is balanced.
- continents: which continent a country is in (real facts, six labels, as unbalanced as the
  world's countries); test asks about 70 countries training never names, no valid.jsonl.
- weekdays: the day of the week some days (1 to 20) before or after a given day, seven labels,
  no valid.jsonl; at 135M parameters a rule the model does not learn from 346 rows.
- capitals: a country's capital city (real facts, open answers); test asks about 50 countries
  training never names, no valid.jsonl.
- word_count: how many words (one to seven) a phrase has, numeric answers, no number in the
  prompt for a number rule to read, no valid.jsonl.
- digit_sum: the sum of a number's digits (100 to 9999), numeric answers, no valid.jsonl; a
  function of one number's digits, which no number rule reads.
- object_colors: the usual colour of a thing (real facts, seven labels; training asks about
  green things three ways and the rest one way), test asks about 42 things training never names
  (one of them, "lemon peel", extends a trained "lemon"), no valid.jsonl.
- sequence_next: the next term of an arithmetic sequence of three or four terms, numeric, no
  valid.jsonl; its three-term and four-term rows each follow a number rule whose new numbers
  must keep the equal steps (tools/data/number_relations.py).
- antonyms: a word's opposite (real facts, open answers); test asks about 60 words that no
  training row names, either way round, no valid.jsonl. A word listed with two opposites
  (short: long, tall) keeps the first, so a few replies exact match marks wrong are right.
- date_format: a date rewritten in another form (ISO to day/month/year with slashes, or a
  date with the month's name to ISO), exact match; numbers in prompt and answer alike.
- choice_category: which of four options names a thing of a kind (animal, fruit, tool, vehicle,
  instrument), replied with the option's letter (real facts, choice metric); test's right
  options are words no training row names.
- odd_one_out: which of four options is not of the kind the other three share, by letter (real
  facts, choice metric, no kind named in the question); test's options are all words no training
  row names.
- compare_numbers: whether one three-digit number is greater (or less) than another, yes or no,
  400 training rows; compare_numbers_3000 the same with 3,000, more than a 240-step schedule
  reads (the same test, and the same first 400 training rows drawn).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

WORDS = {
    "animal": "cat dog horse cow sheep goat pig rabbit mouse lion tiger bear wolf fox deer "
    "zebra camel monkey eagle owl duck goose frog snake whale shark dolphin otter beaver "
    "squirrel",
    "fruit": "apple banana cherry grape lemon lime mango melon orange peach pear plum kiwi "
    "papaya apricot fig date guava lychee coconut pineapple raspberry strawberry blueberry "
    "blackberry cranberry tangerine nectarine pomegranate quince",
    "tool": "hammer wrench screwdriver saw drill pliers chisel shovel rake axe file clamp "
    "ladder level crowbar mallet trowel spanner hacksaw scissors tape needle sander plane "
    "vise awl stapler shears pickaxe grinder",
}
TEMPLATES = [
    "Is a {w} an animal, a fruit or a tool? Answer with one word.",
    "Which group does '{w}' belong to: animal, fruit or tool? Answer with one word.",
    "Classify the word '{w}' as animal, fruit or tool. Answer with one word.",
    "A {w} is which of these: animal, fruit, tool? Answer with one word.",
    "Word: {w}. Category (animal, fruit or tool)? Answer with one word.",
    "Pick the category of '{w}' from animal, fruit and tool. Answer with one word.",
]
# Rows per training word, by category: the skew that makes one answer dominate training.
TRAIN_TEMPLATES = {"animal": 6, "fruit": 2, "tool": 1}
PHRASES_TEXT = (
    "good morning|see you soon|open the door|the red car|a cup of tea|my old friend|"
    "turn left here|rain again today|we won the game|close the window|time to go|"
    "happy new year|the blue sky|call me later|one more time|keep it simple|read the book|"
    "the big city|walk the dog|fresh bread|cold water|the last train|bright light|"
    "quiet night|hot soup|small house|green tea|paper plane|long road|new shoes|fast river|"
    "warm coat|sweet dreams|lost keys|early bird|open sky|dark forest|silver moon|clean room|"
    "old song|short story|heavy rain|soft pillow|busy street|wooden chair|broken clock|"
    "yellow flower|tall tree"
)
PHRASES = PHRASES_TEXT.split("|")


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))


def _write_folder(
    out: Path, name: str, train: list[dict], test: list[dict], description: str, **scoring
) -> None:
    """A folder of training and test rows, and its task.json (`scoring`: metric, tokens)."""
    folder = out / name
    _write(folder, "train.jsonl", train)
    _write(folder, "eval.jsonl", test)
    task = {"name": name, "description": description, **scoring}
    (folder / "task.json").write_text(json.dumps(task) + "\n")


def word_category(out: Path) -> None:
    """The skewed-training classification folder."""
    rng = random.Random(7)
    splits: dict[str, list[dict]] = {"train": [], "valid": [], "eval": []}
    for category, words in WORDS.items():
        pool = words.split()
        rng.shuffle(pool)
        train, valid, test = pool[:18], pool[18:24], pool[24:30]
        for word in train:
            for template in rng.sample(TEMPLATES, TRAIN_TEMPLATES[category]):
                splits["train"].append({"prompt": template.format(w=word), "answer": category})
        for split, chosen in (("valid", valid), ("eval", test)):
            for word in chosen:
                for template in rng.sample(TEMPLATES, 4):
                    splits[split].append({"prompt": template.format(w=word), "answer": category})
    folder = out / "word_category"
    for split, rows in splits.items():
        rng.shuffle(rows)
        _write(folder, f"{split}.jsonl", rows)
    task = {"name": "word_category", "description": "Name the category of a word.",
            "metric": "exact", "max_new_tokens": 8}  # fmt: skip
    (folder / "task.json").write_text(json.dumps(task, indent=2) + "\n")


def _phrase_folder(
    folder: Path, description: str, rows: Callable[[list[str]], list[dict]], phrases: list[str]
) -> None:
    """A folder of questions about phrases: 30 phrases' rows to train, 9 to validate, the rest
    to test, scored by exact match."""
    _write(folder, "train.jsonl", rows(phrases[:30]))
    _write(folder, "valid.jsonl", rows(phrases[30:39]))
    _write(folder, "eval.jsonl", rows(phrases[39:]))
    task = {"name": folder.name, "description": description,
            "metric": "exact", "max_new_tokens": 16}  # fmt: skip
    (folder / "task.json").write_text(json.dumps(task, indent=2) + "\n")


def shout(out: Path) -> None:
    """The capital-letters folder."""
    rng = random.Random(11)
    phrases = list(PHRASES)
    rng.shuffle(phrases)
    templates = [
        "Write '{p}' in capital letters. Answer with the text only.",
        "Rewrite in upper case: {p}. Answer with the text only.",
        "Shout this: '{p}'. Answer with the text only.",
    ]

    def rows(chosen: list[str]) -> list[dict]:
        return [{"prompt": t.format(p=p), "answer": p.upper()} for p in chosen for t in templates]

    _phrase_folder(out / "shout", "Rewrite a phrase in capital letters.", rows, phrases)


def phrase_edits(out: Path) -> None:
    """Four edits of a phrase asked side by side, one of them (the words in reverse order)
    harder for a small model than the rest: misses gather where it is weak."""
    rng = random.Random(17)
    phrases = list(PHRASES)
    rng.shuffle(phrases)
    edits = [
        ("Write '{p}' in capital letters. Answer with the text only.", str.upper),
        ("What is the first word of '{p}'? Answer with the word only.", lambda p: p.split()[0]),
        ("What is the last word of '{p}'? Answer with the word only.", lambda p: p.split()[-1]),
        (
            "Say the words of '{p}' in reverse order. Answer with the text only.",
            lambda p: " ".join(reversed(p.split())),
        ),
    ]

    def rows(chosen: list[str]) -> list[dict]:
        made = [{"prompt": t.format(p=p), "answer": edit(p)} for p in chosen for t, edit in edits]
        rng.shuffle(made)
        return made

    _phrase_folder(out / "phrase_edits", "Edit a phrase as asked.", rows, phrases)


def above_500(out: Path) -> None:
    """The folder whose skewed training makes one answer dominate."""
    rng = random.Random(13)
    numbers = list(range(100, 1000))
    numbers.remove(500)
    rng.shuffle(numbers)
    high = [n for n in numbers if n > 500]
    low = [n for n in numbers if n < 500]
    templates = [
        "Is {n} greater than 500? Answer yes or no.",
        "Is the number {n} above 500? Answer yes or no.",
        "Answer yes or no: is {n} more than 500?",
    ]

    def rows(chosen: list[int]) -> list[dict]:
        return [
            {"prompt": rng.choice(templates).format(n=n), "answer": "yes" if n > 500 else "no"}
            for n in chosen
        ]

    held = {"valid": high[:40] + low[:40], "eval": high[40:100] + low[40:100]}
    train = high[100:370] + low[100:130]
    folder = out / "above_500"
    for split, chosen in (("train", train), *held.items()):
        picked = rows(chosen)
        rng.shuffle(picked)
        _write(folder, f"{split}.jsonl", picked)
    task = {"name": "above_500", "description": "Say whether a number is above 500.",
            "metric": "exact", "max_new_tokens": 4}  # fmt: skip
    (folder / "task.json").write_text(json.dumps(task, indent=2) + "\n")


def _word_problem_rows(rng: random.Random, count: int) -> list[dict]:
    """`count` one-step word problems (add or take away) on numbers from 2 to 60."""
    items = ["apples", "pens", "books", "coins", "stamps", "marbles"]
    people = ["Tom", "Ana", "Lee", "Sam", "Mia", "Raj"]
    made = []
    for _ in range(count):
        a, b = rng.randint(2, 60), rng.randint(2, 60)
        who, what = rng.choice(people), rng.choice(items)
        if rng.random() < 0.5:
            prompt = f"{who} has {a} {what} and gets {b} more. How many {what} does {who} have now?"
            made.append({"prompt": prompt, "answer": str(a + b)})
        else:
            a, b = max(a, b), min(a, b)
            prompt = f"{who} had {a} {what} and gave away {b}. How many {what} are left?"
            made.append({"prompt": prompt, "answer": str(a - b)})
    return made


def _word_problem_folder(folder: Path, name: str, seed: int, train_rows: int) -> None:
    rng = random.Random(seed)
    train, test = _word_problem_rows(rng, train_rows), _word_problem_rows(rng, 50)
    # Draws can repeat a test question: the training file leaves it out, as the lab would drop
    # it on loading.
    asked = {row["prompt"] for row in test}
    _write(folder, "train.jsonl", [row for row in train if row["prompt"] not in asked])
    _write(folder, "eval.jsonl", test)
    task = {"name": name, "description": "Solve a one-step word problem.", "metric": "numeric"}
    (folder / "task.json").write_text(json.dumps(task, indent=2) + "\n")


def word_problems(out: Path) -> None:
    """One-step word problems (add or take away) with a numeric answer and no valid.jsonl:
    validation is lent from the training file, 30 items, so one standard error is about 0.09."""
    _word_problem_folder(out / "word_problems", "word_problems", 7, 200)


def word_problems_500(out: Path) -> None:
    """The same kind of problem, 520 training rows: more than a stretch reads, fewer than a
    whole schedule does; validation lent from the training file is 78 items."""
    _word_problem_folder(out / "word_problems_500", "word_problems_500", 11, 520)


def two_step_small(out: Path) -> None:
    """Word problems of two steps on three small numbers, numeric answers, no valid.jsonl.
    (With numbers up to 60 both plain SFT and SFT on rows number rules make stay near zero on
    test at 240 steps: 0.06 and 0.02; SmolLM2-135M does not learn that arithmetic here.)"""
    rng = random.Random(13)
    items = ["apples", "pens", "books", "coins", "stamps", "marbles"]
    people = ["Tom", "Ana", "Lee", "Sam", "Mia", "Raj"]

    def row() -> dict:
        who, what = rng.choice(people), rng.choice(items)
        kind = rng.randrange(3)
        if kind == 0:
            a, b = rng.randint(2, 9), rng.randint(2, 9)
            c = rng.randint(2, a + b - 1)
            prompt = (f"{who} has {a} {what}, gets {b} more and then gives away {c}. "
                      f"How many {what} does {who} have now?")  # fmt: skip
            return {"prompt": prompt, "answer": str(a + b - c)}
        if kind == 1:
            a = rng.randint(4, 9)
            b, c = rng.randint(2, a), rng.randint(2, 9)
            prompt = (f"{who} had {a} {what}, gave away {b} and then got {c} more. "
                      f"How many {what} does {who} have now?")  # fmt: skip
            return {"prompt": prompt, "answer": str(a - b + c)}
        a, b, c = rng.randint(2, 4), rng.randint(2, 5), rng.randint(2, 9)
        prompt = (f"{who} has {c} {what} and buys {a} bags with {b} {what} in each. "
                  f"How many {what} does {who} have now?")  # fmt: skip
        return {"prompt": prompt, "answer": str(a * b + c)}

    folder = out / "two_step_small"
    train, test = [row() for _ in range(200)], [row() for _ in range(50)]
    asked = {row["prompt"] for row in test}
    # One row per question: small numbers repeat a few.
    kept = {row["prompt"]: row for row in train if row["prompt"] not in asked}
    _write(folder, "train.jsonl", list(kept.values()))
    _write(folder, "eval.jsonl", test)
    task = {"name": "two_step_small", "description": "Solve a word problem of two steps.",
            "metric": "numeric"}  # fmt: skip
    (folder / "task.json").write_text(json.dumps(task, indent=2) + "\n")


CONTINENTS = {
    "Africa": "Algeria Angola Benin Botswana Burkina_Faso Burundi Cameroon Cape_Verde Chad "
    "Comoros Congo Djibouti Egypt Eritrea Eswatini Ethiopia Gabon Gambia Ghana Guinea Kenya "
    "Lesotho Liberia Libya Madagascar Malawi Mali Mauritania Mauritius Morocco Mozambique "
    "Namibia Niger Nigeria Rwanda Senegal Seychelles Sierra_Leone Somalia South_Africa "
    "South_Sudan Sudan Tanzania Togo Tunisia Uganda Zambia Zimbabwe",
    "Asia": "Afghanistan Armenia Azerbaijan Bahrain Bangladesh Bhutan Brunei Cambodia China "
    "Georgia India Indonesia Iran Iraq Israel Japan Jordan Kazakhstan Kuwait Kyrgyzstan Laos "
    "Lebanon Malaysia Maldives Mongolia Myanmar Nepal North_Korea Oman Pakistan Philippines "
    "Qatar Saudi_Arabia Singapore South_Korea Sri_Lanka Syria Tajikistan Thailand "
    "Turkmenistan Uzbekistan Vietnam Yemen",
    "Europe": "Albania Andorra Austria Belarus Belgium Bulgaria Croatia Cyprus Denmark Estonia "
    "Finland France Germany Greece Hungary Iceland Ireland Italy Latvia Liechtenstein "
    "Lithuania Luxembourg Malta Moldova Monaco Montenegro Netherlands Norway Poland Portugal "
    "Romania San_Marino Serbia Slovakia Slovenia Spain Sweden Switzerland Ukraine",
    "North America": "Bahamas Barbados Belize Canada Costa_Rica Cuba Dominica El_Salvador "
    "Grenada Guatemala Haiti Honduras Jamaica Mexico Nicaragua Panama Trinidad_and_Tobago "
    "United_States",
    "South America": "Argentina Bolivia Brazil Chile Colombia Ecuador Guyana Paraguay Peru "
    "Suriname Uruguay Venezuela",
    "Oceania": "Australia Fiji Kiribati Micronesia Nauru New_Zealand Palau Papua_New_Guinea "
    "Samoa Solomon_Islands Tonga Tuvalu Vanuatu",
}


def continents(out: Path) -> None:
    """A country's continent: 70 countries to test, the rest asked three ways to train."""
    templates = [
        "Which continent is {c} in? Answer with the continent only.",
        "On which continent is the country {c}? Answer with the continent only.",
        "{c} is a country in which continent? Answer with the continent only.",
    ]
    rng = random.Random(31)
    pairs = [(c.replace("_", " "), k) for k, names in CONTINENTS.items() for c in names.split()]
    rng.shuffle(pairs)

    def rows(chosen: list[tuple[str, str]], per: int) -> list[dict]:
        return [
            {"prompt": t.format(c=country), "answer": continent}
            for country, continent in chosen
            for t in rng.sample(templates, per)
        ]

    train, test = rows(pairs[70:], 3), rows(pairs[:70], 1)
    rng.shuffle(train)
    description = "Name the continent a country is in."
    _write_folder(out, "continents", train, test, description, metric="exact", max_new_tokens=8)


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def weekdays(out: Path) -> None:
    """The day some days before or after a given one: 100 distinct questions to test, the
    training rows that ask none of them."""
    after = [
        "Today is {d}. What day of the week will it be in {n} days? Answer with the day only.",
        "If today is {d}, which day is it {n} days from now? Answer with the day only.",
        "It is {d}. What day comes {n} days later? Answer with the day only.",
    ]
    before = [
        "Today is {d}. What day of the week was it {n} days ago? Answer with the day only.",
        "If today is {d}, which day was it {n} days earlier? Answer with the day only.",
    ]
    rng = random.Random(23)

    def rows(count: int) -> list[dict]:
        made = []
        for _ in range(count):
            day, n = rng.randrange(7), rng.randint(1, 20)
            if rng.random() < 0.6:
                prompt, answer = rng.choice(after), DAYS[(day + n) % 7]
            else:
                prompt, answer = rng.choice(before), DAYS[(day - n) % 7]
            made.append({"prompt": prompt.format(d=DAYS[day], n=n), "answer": answer})
        return made

    test = list({row["prompt"]: row for row in rows(140)}.values())[:100]
    asked = {row["prompt"] for row in test}
    train = {row["prompt"]: row for row in rows(600) if row["prompt"] not in asked}
    description = "Name the day of the week some days before or after a given day."
    rows_kept = list(train.values())
    _write_folder(out, "weekdays", rows_kept, test, description, metric="exact", max_new_tokens=8)


# Countries and their capitals (capitals as commonly written in English, without accents).
CAPITALS = (
    "Afghanistan:Kabul|Albania:Tirana|Algeria:Algiers|Angola:Luanda|Argentina:Buenos Aires|"
    "Armenia:Yerevan|Australia:Canberra|Austria:Vienna|Azerbaijan:Baku|Bahamas:Nassau|"
    "Bangladesh:Dhaka|Belarus:Minsk|Belgium:Brussels|Bolivia:Sucre|Botswana:Gaborone|"
    "Brazil:Brasilia|Bulgaria:Sofia|Cambodia:Phnom Penh|Cameroon:Yaounde|Canada:Ottawa|"
    "Chile:Santiago|China:Beijing|Colombia:Bogota|Croatia:Zagreb|Cuba:Havana|"
    "Cyprus:Nicosia|Czechia:Prague|Denmark:Copenhagen|Ecuador:Quito|Egypt:Cairo|"
    "Estonia:Tallinn|Ethiopia:Addis Ababa|Fiji:Suva|Finland:Helsinki|France:Paris|"
    "Georgia:Tbilisi|Germany:Berlin|Ghana:Accra|Greece:Athens|Guatemala:Guatemala City|"
    "Haiti:Port-au-Prince|Honduras:Tegucigalpa|Hungary:Budapest|Iceland:Reykjavik|"
    "India:New Delhi|Indonesia:Jakarta|Iran:Tehran|Iraq:Baghdad|Ireland:Dublin|"
    "Israel:Jerusalem|Italy:Rome|Jamaica:Kingston|Japan:Tokyo|Jordan:Amman|"
    "Kazakhstan:Astana|Kenya:Nairobi|Kuwait:Kuwait City|Laos:Vientiane|Latvia:Riga|"
    "Lebanon:Beirut|Libya:Tripoli|Lithuania:Vilnius|Luxembourg:Luxembourg|"
    "Madagascar:Antananarivo|Malaysia:Kuala Lumpur|Mali:Bamako|Malta:Valletta|"
    "Mexico:Mexico City|Moldova:Chisinau|Mongolia:Ulaanbaatar|Morocco:Rabat|"
    "Mozambique:Maputo|Nepal:Kathmandu|Netherlands:Amsterdam|New Zealand:Wellington|"
    "Nicaragua:Managua|Niger:Niamey|Nigeria:Abuja|North Korea:Pyongyang|Norway:Oslo|"
    "Oman:Muscat|Pakistan:Islamabad|Panama:Panama City|Paraguay:Asuncion|Peru:Lima|"
    "Philippines:Manila|Poland:Warsaw|Portugal:Lisbon|Qatar:Doha|Romania:Bucharest|"
    "Russia:Moscow|Rwanda:Kigali|Saudi Arabia:Riyadh|Senegal:Dakar|Serbia:Belgrade|"
    "Singapore:Singapore|Slovakia:Bratislava|Slovenia:Ljubljana|Somalia:Mogadishu|"
    "South Africa:Pretoria|South Korea:Seoul|Spain:Madrid|Sri Lanka:Colombo|"
    "Sudan:Khartoum|Sweden:Stockholm|Switzerland:Bern|Syria:Damascus|Taiwan:Taipei|"
    "Tanzania:Dodoma|Thailand:Bangkok|Tunisia:Tunis|Turkey:Ankara|Uganda:Kampala|"
    "Ukraine:Kyiv|United Kingdom:London|United States:Washington|Uruguay:Montevideo|"
    "Uzbekistan:Tashkent|Venezuela:Caracas|Vietnam:Hanoi|Yemen:Sanaa|Zambia:Lusaka|"
    "Zimbabwe:Harare"
)


def capitals(out: Path) -> None:
    """A country's capital, an open answer: 50 countries to test, the rest asked three ways to
    train."""
    templates = [
        "What is the capital of {c}? Answer with the city only.",
        "Name the capital city of {c}. Answer with the city only.",
        "{c} has which city as its capital? Answer with the city only.",
    ]
    rng = random.Random(41)
    pairs = [tuple(pair.split(":")) for pair in CAPITALS.split("|")]
    rng.shuffle(pairs)
    train = [
        {"prompt": t.format(c=country), "answer": city}
        for country, city in pairs[50:]
        for t in templates
    ]
    test = [{"prompt": rng.choice(templates).format(c=c), "answer": city} for c, city in pairs[:50]]
    rng.shuffle(train)
    description = "Name the capital city of a country."
    _write_folder(out, "capitals", train, test, description, metric="exact", max_new_tokens=12)


COUNTED_WORDS = (
    "red blue green small big old new cat dog bird tree house river road cup book door "
    "window sun moon star rain wind snow car train boat city town park garden apple bread "
    "milk tea coffee chair table lamp phone letter song dance game ball hill lake sea "
    "stone cloud fire light night morning friend teacher child king queen"
)


def word_count(out: Path) -> None:
    """How many words a phrase of one to seven words has: no number in the prompt for a
    rule to read, 100 distinct phrases to test, 400 others to train."""
    templates = [
        "How many words are in '{p}'? Answer with the number only.",
        "Count the words in the phrase '{p}'. Answer with the number only.",
    ]
    rng, words = random.Random(43), COUNTED_WORDS.split()
    phrases: dict[str, int] = {}
    while len(phrases) < 500:
        size = rng.randint(1, 7)
        phrases.setdefault(" ".join(rng.choice(words) for _ in range(size)), size)
    chosen = list(phrases.items())

    def rows(part: list[tuple[str, int]]) -> list[dict]:
        return [
            {"prompt": rng.choice(templates).format(p=phrase), "answer": str(size)}
            for phrase, size in part
        ]

    train, test = rows(chosen[100:]), rows(chosen[:100])
    description = "Count the words of a phrase."
    _write_folder(out, "word_count", train, test, description, metric="numeric", max_new_tokens=6)


DIGIT_SUM_TEMPLATES = (
    "What is the sum of the digits of {n}? Answer with a number.",
    "Add up the digits of {n}. Answer with a number.",
    "Digit sum of {n}? Answer with a number.",
)


def digit_sum(out: Path) -> None:
    """The sum of a number's digits: 100 test items, then 400 training draws less repeats and
    test items."""
    rng = random.Random(3)

    def row() -> dict:
        number = rng.randint(100, 9999)
        prompt = rng.choice(DIGIT_SUM_TEMPLATES).format(n=number)
        return {"prompt": prompt, "answer": str(sum(map(int, str(number))))}

    test = [row() for _ in range(100)]
    asked = {item["prompt"] for item in test}
    train = {item["prompt"]: item for item in (row() for _ in range(400))}
    rows = [item for prompt, item in train.items() if prompt not in asked]
    _write_folder(out, "digit_sum", rows, test, "Sum the digits of a number.", metric="numeric")


OBJECT_COLORS = {
    "red": "strawberry tomato cherry ruby ladybug raspberry radish brick cranberry poppy "
    "chili_pepper fire_truck stop_sign blood lobster red_pepper pomegranate cardinal_bird",
    "yellow": "banana lemon sunflower corn butter canary school_bus mustard daffodil dandelion "
    "egg_yolk chick taxi_cab bumblebee_stripe yellow_pepper pineapple_flesh buttercup lemon_peel",
    "green": "grass leaf lime frog cucumber broccoli spinach lettuce pea emerald moss celery "
    "avocado pickle shamrock zucchini parsley cactus",
    "blue": "sky ocean sapphire blueberry bluebird denim blue_whale sea forget-me-not cornflower "
    "smurf lapis_lazuli blue_jay bluebell blue_jeans robin_egg swimming_pool_water clear_sky",
    "white": "snow milk salt sugar cloud polar_bear swan chalk cotton paper rice ghost pearl teeth "
    "cauliflower flour marshmallow ivory",
    "black": "coal crow ink tar raven licorice charcoal panther tire asphalt soot crude_oil ebony "
    "obsidian black_cat top_hat tuxedo night",
    "orange": "carrot orange pumpkin tangerine apricot goldfish basketball traffic_cone marigold "
    "papaya monarch_butterfly sweet_potato cantaloupe_flesh clementine persimmon orange_juice "
    "fox_fur mandarin",
}
OBJECT_COLOR_TEMPLATES = (
    "What color is a {w} usually? Answer with one word.",
    "Name the usual color of {w}. Answer with one word.",
    "Typical color of {w}: red, yellow, green, blue, white, black or orange? Answer with one word.",
)


def object_colors(out: Path) -> None:
    """Seven colour labels: 11 things of each colour to train on (green ones asked all three
    ways, the rest one way), 6 others of each to test, each asked two ways."""
    rng = random.Random(5)
    splits: dict[str, list[dict]] = {"train": [], "eval": []}
    for color, words in OBJECT_COLORS.items():
        pool = [word.replace("_", " ") for word in words.split()]
        rng.shuffle(pool)
        for thing in pool[:11]:
            asked = (
                OBJECT_COLOR_TEMPLATES
                if color == "green"
                else rng.sample(OBJECT_COLOR_TEMPLATES, 1)
            )
            splits["train"] += [{"prompt": t.format(w=thing), "answer": color} for t in asked]
        for thing in pool[11:17]:
            asked = rng.sample(OBJECT_COLOR_TEMPLATES, 2)
            splits["eval"] += [{"prompt": t.format(w=thing), "answer": color} for t in asked]
    for rows in splits.values():
        rng.shuffle(rows)
    description = "Name the usual color of a thing."
    _write_folder(out, "object_colors", splits["train"], splits["eval"], description,
                  metric="exact", max_new_tokens=8)  # fmt: skip


SEQUENCE_TEMPLATES = (
    "What number comes next: {s}?",
    "Continue the sequence {s}, ... with the next number.",
    "Next term of {s}? Reply with the number only.",
)


def sequence_next(out: Path) -> None:
    """Arithmetic sequences of three or four terms (a quarter falling), the next term asked:
    420 distinct sequences, the last 100 to test."""
    rng = random.Random(21)
    seen, rows = set(), []
    while len(rows) < 420:
        start, step, length = rng.randint(1, 60), rng.randint(2, 12), rng.choice((3, 4))
        if rng.random() < 0.25:
            step = -step
        terms = [start + step * i for i in range(length + 1)]
        if min(terms) < 0 or (start, step, length) in seen:
            continue
        seen.add((start, step, length))
        shown = ", ".join(str(term) for term in terms[:-1])
        prompt = rng.choice(SEQUENCE_TEMPLATES).format(s=shown)
        rows.append({"prompt": prompt, "answer": str(terms[-1])})
    description = "Give the next number of an arithmetic sequence."
    _write_folder(out, "sequence_next", rows[:320], rows[320:], description,
                  metric="numeric", max_new_tokens=8)  # fmt: skip


ANTONYMS = (
    "hot cold|big small|up down|day night|fast slow|happy sad|light dark|open closed|"
    "old young|rich poor|hard soft|wet dry|full empty|strong weak|early late|loud quiet|"
    "long short|high low|good bad|clean dirty|thick thin|heavy light|push pull|win lose|"
    "buy sell|enter exit|give take|love hate|first last|inside outside|above below|"
    "before after|front back|left right|north south|east west|true false|alive dead|"
    "begin end|sweet sour|wide narrow|deep shallow|brave cowardly|friend enemy|question answer|"
    "remember forget|accept reject|arrive depart|asleep awake|absent present|ancient modern|"
    "bottom top|cheap expensive|come go|cry laugh|dangerous safe|difficult easy|float sink|"
    "found lost|gentle rough|guilty innocent|healthy sick|huge tiny|include exclude|"
    "increase decrease|kind cruel|lazy hardworking|major minor|maximum minimum|near far|"
    "noisy silent|often rarely|polite rude|private public|raise lower|shut open|simple complex|"
    "smooth rough|sharp dull|tall short|tight loose|wild tame|wise foolish|always never|"
    "arrival departure|boy girl|father mother|king queen|husband wife|uncle aunt|"
    "success failure|victory defeat|war peace|city country|summer winter|morning evening|"
    "sunrise sunset|attack defend|borrow lend|break fix|catch throw|teach learn|"
    "add subtract|multiply divide|positive negative|odd even|vertical horizontal|"
    "visible invisible|possible impossible|legal illegal|correct incorrect|honest dishonest|"
    "patient impatient|polite impolite|known unknown|happy unhappy|fair unfair|"
    "lucky unlucky|usual unusual|like dislike|agree disagree|appear disappear|"
    "connect disconnect|mature immature|ordinary extraordinary|junior senior|"
    "import export|inhale exhale|minimum maximum|optimist pessimist|plural singular|"
    "question reply|sharp blunt|dawn dusk|fresh stale|generous stingy|hollow solid|"
    "humble proud|shiny dull|smile frown|awake asleep|spend save|whisper shout|"
    "forward backward|upstairs downstairs|wealth poverty|joy sorrow|gain loss|"
    "strength weakness|freeze melt|tame wild|rise fall|sit stand"
)

ANTONYM_TEMPLATES = (
    "What is the opposite of '{w}'? Answer with one word.",
    "Give the antonym of {w}. One word only.",
    "Opposite of {w}? Reply with one word.",
)


def antonyms(out: Path) -> None:
    """A word's opposite (real facts, open answers): 60 test words, none of them and none of
    their opposites in a training row; a word listed twice keeps its first opposite."""
    rng = random.Random(8)
    words, seen = [], set()
    for first, second in (pair.split() for pair in ANTONYMS.split("|")):
        for word, opposite in ((first, second), (second, first)):
            if word not in seen:
                seen.add(word)
                words.append((word, opposite))
    rng.shuffle(words)
    test, used = [], set()
    for word, opposite in words:
        if len(test) < 60 and word not in used and opposite not in used:
            test.append((word, opposite))
            used |= {word, opposite}
    train = [(w, o) for w, o in words if w not in used and o not in used]

    def rows(pairs: list[tuple[str, str]]) -> list[dict]:
        return [{"prompt": rng.choice(ANTONYM_TEMPLATES).format(w=w), "answer": o}
                for w, o in pairs]  # fmt: skip

    train_rows = rows(train)
    _write_folder(out, "antonyms", train_rows, rows(test), "Give a word's opposite.",
                  metric="exact", max_new_tokens=8)  # fmt: skip


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip
TO_SLASHES = (
    "Write the date {iso} as DD/MM/YYYY. Reply with the date only.",
    "Rewrite {iso} in the form day/month/year, e.g. 05/11/1999. Reply with the date only.",
)
TO_ISO = (
    "Write {named} as YYYY-MM-DD. Reply with the date only.",
    "Give the ISO date (YYYY-MM-DD) for {named}. Reply with the date only.",
)


def date_format(out: Path) -> None:
    """Dates rewritten (ISO to DD/MM/YYYY, or "7 March 2021" to ISO): 420 distinct questions,
    the last 100 to test."""
    rng = random.Random(31)
    rows, asked = [], set()
    while len(rows) < 420:
        year, month, day = rng.randint(1950, 2030), rng.randint(1, 12), rng.randint(1, 28)
        iso = f"{year}-{month:02d}-{day:02d}"
        if rng.random() < 0.5:
            prompt, answer = rng.choice(TO_SLASHES).format(iso=iso), f"{day:02d}/{month:02d}/{year}"
        else:
            named = f"{day} {MONTHS[month - 1]} {year}"
            prompt, answer = rng.choice(TO_ISO).format(named=named), iso
        if prompt not in asked:
            asked.add(prompt)
            rows.append({"prompt": prompt, "answer": answer})
    _write_folder(out, "date_format", rows[:320], rows[320:], "Rewrite a date in another form.",
                  metric="exact", max_new_tokens=12)  # fmt: skip


MORE_KINDS = {
    "vehicle": "car bus truck bicycle train airplane boat ship tram scooter motorcycle taxi van "
    "tractor helicopter subway canoe yacht ferry jeep lorry rocket sled wagon",
    "instrument": "piano guitar violin drum flute trumpet cello harp saxophone clarinet trombone "
    "banjo ukulele oboe tuba accordion harmonica xylophone bagpipes mandolin cymbal tambourine "
    "bassoon organ",
}
KINDS = {kind: words.split() for kind, words in {**WORDS, **MORE_KINDS}.items()}
CHOICE_TEMPLATES = (
    "Which of these is {article} {kind}?\n{options}\nReply with the letter of the correct "
    "option only.",
    "Pick the {kind}.\n{options}\nAnswer with the letter only.",
)


def _kind_halves(rng: random.Random) -> dict[str, dict[str, list[str]]]:
    """Each kind's words in a random order, two thirds for training questions ("train"), the
    rest for test's ("eval")."""
    halves: dict[str, dict[str, list[str]]] = {"train": {}, "eval": {}}
    for kind, words in KINDS.items():
        pool = rng.sample(words, len(words))
        cut = len(pool) * 2 // 3
        halves["train"][kind], halves["eval"][kind] = pool[:cut], pool[cut:]
    return halves


def _lettered(options: list[str]) -> str:
    """Options one a line, lettered (A) to (D)."""
    return "\n".join(f"({'ABCD'[i]}) {word}" for i, word in enumerate(options))


def choice_category(out: Path) -> None:
    """Four options, one of the kind asked: two thirds of each kind's words answer training
    questions, the rest test's, each test word asked twice; options' letters at random."""
    rng = random.Random(37)
    halves = _kind_halves(rng)

    def rows(split: str, times: int) -> list[dict]:
        words, made = halves[split], []
        for kind, right_words in words.items():
            for right in right_words:
                for _ in range(times):
                    others = rng.sample([k for k in words if k != kind], 3)
                    options = [right, *(rng.choice(words[other]) for other in others)]
                    rng.shuffle(options)
                    lines = _lettered(options)
                    article = "an" if kind[0] in "aeiou" else "a"
                    prompt = rng.choice(CHOICE_TEMPLATES).format(
                        article=article, kind=kind, options=lines
                    )
                    made.append({"prompt": prompt, "answer": "ABCD"[options.index(right)]})
        rng.shuffle(made)
        return made

    _write_folder(out, "choice_category", rows("train", 4), rows("eval", 2),
                  "Pick the option that names a thing of the kind asked; reply with its letter.",
                  metric="choice", max_new_tokens=8)  # fmt: skip


def odd_one_out(out: Path) -> None:
    """Three words of one kind and one of another: two thirds of each kind's words make training
    questions, the rest test's, each odd word asked four times in training and twice in test."""
    rng = random.Random(41)
    halves = _kind_halves(rng)

    def rows(split: str, times: int) -> list[dict]:
        words, made = halves[split], []
        for kind, odd_words in words.items():
            for odd in odd_words:
                for _ in range(times):
                    shared = rng.choice([k for k in words if k != kind])
                    options = [odd, *rng.sample(words[shared], 3)]
                    rng.shuffle(options)
                    lines = _lettered(options)
                    prompt = (
                        f"Which of these does not belong with the others?\n{lines}\nReply "
                        "with the letter of that option only."
                    )
                    made.append({"prompt": prompt, "answer": "ABCD"[options.index(odd)]})
        rng.shuffle(made)
        return made

    _write_folder(out, "odd_one_out", rows("train", 4), rows("eval", 2),
                  "Pick the option that is not of the kind the other three share; reply with "
                  "its letter.", metric="choice", max_new_tokens=8)  # fmt: skip


COMPARE_TEMPLATES = {
    "greater": "Is {a} greater than {b}? Answer yes or no.",
    "less": "Is {a} less than {b}? Answer yes or no.",
}


def compare_numbers(out: Path, name: str = "compare_numbers", train_rows: int = 400) -> None:
    """Whether one three-digit number is greater (or less) than another, yes or no: half the
    pairs share a hundreds digit, a quarter the tens too; 100 test questions, half of them
    "yes", on pairs training never asks about in either order; `train_rows` to train on."""
    rng = random.Random(43)

    def pair() -> tuple[int, int]:
        a = rng.randint(100, 999)
        shared = rng.choice((1, 1, 2, 3))  # how many leading digits a keeps in b (3: none)
        while True:
            b = rng.randint(100, 999)
            if shared == 1:
                b = a // 100 * 100 + b % 100
            elif shared == 2:
                b = a // 10 * 10 + b % 10
            if b != a:
                return a, b

    def row(answer: str) -> tuple[frozenset[int], dict]:
        """A question answered `answer`, and the pair of numbers it asks about."""
        while True:
            a, b = pair()
            relation = rng.choice(tuple(COMPARE_TEMPLATES))
            holds = a > b if relation == "greater" else a < b
            if holds == (answer == "yes"):
                prompt = COMPARE_TEMPLATES[relation].format(a=a, b=b)
                return frozenset((a, b)), {"prompt": prompt, "answer": answer}

    test = [row(answer) for answer in ("yes", "no") * 50]
    seen = {asked for asked, _ in test}
    train: list[dict] = []
    while len(train) < train_rows:
        asked, item = row(("yes", "no")[len(train) % 2])
        if asked not in seen:
            seen.add(asked)
            train.append(item)
    _write_folder(
        out,
        name,
        train,
        [item for _, item in test],
        "Say whether one number is greater or less than another: yes or no.",
        metric="exact",
        max_new_tokens=4,
    )


def without_validation(out: Path, name: str) -> None:
    """A copy of a folder that ships no valid.jsonl: the lab must lend validation from the
    skewed training file, which says nothing of test's balanced answers."""
    source, folder = out / name, out / f"{name}_no_valid"
    folder.mkdir(parents=True, exist_ok=True)
    # task.json too, name and all: the name seeds which training rows validation borrows.
    for name_of_file in ("train.jsonl", "eval.jsonl", "task.json"):
        (folder / name_of_file).write_text((source / name_of_file).read_text())


def main() -> None:
    """Write the folders under the directory given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="heldout-tasks", type=Path)
    out = parser.parse_args().out_dir
    word_category(out)
    shout(out)
    phrase_edits(out)
    above_500(out)
    word_problems(out)
    word_problems_500(out)
    two_step_small(out)
    continents(out)
    weekdays(out)
    capitals(out)
    word_count(out)
    digit_sum(out)
    object_colors(out)
    sequence_next(out)
    antonyms(out)
    date_format(out)
    choice_category(out)
    odd_one_out(out)
    compare_numbers(out)
    compare_numbers(out, "compare_numbers_3000", 3000)
    for skewed in ("word_category", "above_500"):
        without_validation(out, skewed)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
