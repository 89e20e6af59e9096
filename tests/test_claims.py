"""Claims from papers: which way each points, and the verdict across them."""

from postlab.tools.papers.claims import stance_of, verdict


def test_a_claims_wording_sets_its_stance():
    assert stance_of("raised GSM8K accuracy from 41% to 53% at 7B") == "supports"
    assert stance_of("gave no gain over plain SFT on small models") == "against"
    assert stance_of("accuracy degraded when the reward was noisy") == "against"
    assert stance_of("helps only when the base model already solves some prompts") == "mixed"
    # Doing more of it did not help: diminishing returns, not a verdict against it.
    assert stance_of("27,540 curated annotations were enough; more data did not help") == "mixed"
    assert stance_of("rationalisation of failed problems noticeably speeds improvement") == (
        "supports"
    )
    # A recipe fact names no outcome.
    assert stance_of("cosine schedule with peak learning rate 2e-5, batch size 64") == "setting"


def test_the_verdict_is_unanimous_or_mixed():
    assert verdict([]) is None
    assert verdict(["supports", "supports"]) == "supports"
    assert verdict(["against"]) == "against"
    assert verdict(["supports", "against"]) == "mixed"
    assert verdict(["setting", "supports"]) == "supports" and verdict(["setting"]) is None
