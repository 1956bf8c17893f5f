"""Model card values in words on the Model card page (core.domain.card_words), worked out by hand."""

from __future__ import annotations

from core.domain.card_words import card_value_in_words
from core.domain.glossary import glossary_for

WORDS = glossary_for({"heart_rate": ("Heart rate", "beats/min"), "spo2": ("Oxygen saturation (SpO2)", "%")})


def test_settings_stay_exact_as_code_and_the_model_type_reads_as_words() -> None:
    shown = card_value_in_words("gradient_boosting (learning_rate=0.1, max_depth=3)", WORDS)
    assert shown.text == "gradient boosting (`learning_rate=0.1, max_depth=3`)"
    assert shown.raw == "gradient_boosting (learning_rate=0.1, max_depth=3)"


def test_inputs_are_named_by_the_use_case_and_attributes_by_the_glossary() -> None:
    shown = card_value_in_words("age (number), heart_rate (number), spo2 (number)", WORDS, input_list=True)
    assert shown.text == "Age (number), Heart rate (number), Oxygen saturation (SpO2) (number)"
    assert card_value_in_words("FAIL sensitivity in every group of age_band × race_ethnicity", WORDS).text == (
        "FAIL sensitivity in every group of Age band × race and ethnicity")


def test_long_ids_are_cut_to_eight_characters_and_a_lone_none_is_lower_case() -> None:
    shown = card_value_in_words("run 2bd96a5df5994be28d257588a7e54c04; git commit 5c28859", WORDS)
    assert shown.text == "run 2bd96a5d…; git commit 5c28859"
    assert card_value_in_words("None beyond excluding race", WORDS).text == "none beyond excluding race"


def test_a_value_already_in_words_is_left_alone() -> None:
    shown = card_value_in_words("Adults admitted to the ICU", WORDS)
    assert (shown.text, shown.raw) == ("Adults admitted to the ICU", None)
