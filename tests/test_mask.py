"""Masking of resident IDs and mobile numbers (article 15): what is masked, what is not, and that
the byte stream keeps its length and gives the same output however it is cut into chunks."""

from __future__ import annotations

import itertools
import random

import pytest

from nanbu_secops.mask import Masker, looks_textual, mask_bytes, mask_text, valid_resident_id

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first17: str) -> str:
    """The 17 digits with their GB 11643 check character, computed here by the standard's rule."""
    remainder = sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11
    return first17 + "10X98765432"[remainder]


KNOWN = "11010519491231002X"  # the standard's own example
NANBU = resident_id("51132119850612341")  # 511321: Nanbu County; check digit 8
WRONG_CHECK = NANBU[:17] + ("0" if NANBU[17] != "0" else "1")


def test_check_character_is_computed_as_the_standard_says():
    assert resident_id(KNOWN[:17]) == KNOWN
    assert NANBU[-1].isdigit()


@pytest.mark.parametrize("text, valid", [
    (KNOWN, True),
    (KNOWN.lower(), True),  # a lower-case x is still the check character 10
    (NANBU, True),
    (WRONG_CHECK, False),
    (KNOWN[:-1] + "0", False),
    (resident_id("51132119850230341"), False),  # 30 February
    (resident_id("51132118991231341"), False),  # born 1899
    (resident_id("51132121011231341"), False),  # born 2101
    (resident_id("51132120000229341"), True),  # 29 February of a leap year
    (KNOWN[:17], False),
    (KNOWN + "1", False),
    ("１１０１０５１９４９１２３１００２X", False),  # full-width digits
])
def test_valid_resident_id(text, valid):
    assert valid_resident_id(text) is valid


@pytest.mark.parametrize("text, masked, count", [
    (f"id {KNOWN} ok", "id 110105********002X ok", 1),
    (f"id {NANBU}.", f"id 511321********{NANBU[-4:]}.", 1),
    (f"id:{KNOWN.lower()}", "id:110105********002x", 1),
    (f"id {WRONG_CHECK}", f"id {WRONG_CHECK}", 0),  # 18 digits with a wrong check digit: an order number
    (f"7{KNOWN}", f"7{KNOWN}", 0),  # embedded in a longer run of digits
    (f"{KNOWN}7", f"{KNOWN}7", 0),
    (f"{NANBU}X", None, 0),  # 18 digits and an X: 19 characters, no ID
    (f"A{KNOWN}B", "A110105********002XB", 1),  # letters are no digits
    ("tel 13812345678", "tel 138****5678", 1),
    ("tel:+8613812345678", "tel:+86138****5678", 1),
    ("tel 8613812345678", "tel 86138****5678", 1),
    ("tel 008613812345678", "tel 0086138****5678", 1),
    ("tel +86 13812345678", "tel +86 138****5678", 1),
    ("tel 12812345678", "tel 12812345678", 0),  # no mainland mobile starts 12
    ("tel 913812345678", "tel 913812345678", 0),
    ("tel 138123456789", "tel 138123456789", 0),
    ("tel 1381234567", "tel 1381234567", 0),
    ("tel 0868613812345678", "tel 0868613812345678", 0),
    ("tel 13812345678X", "tel 138****5678X", 1),  # only the ID's last character may be an X
    (f"{KNOWN},13912345678,15012345678", "110105********002X,139****5678,150****5678", 3),
    # written in groups: one separator throughout, in the usual places; separators are kept
    ("tel 138 1234 5678", "tel 138 **** 5678", 1),
    ("tel 138-1234-5678.", "tel 138-****-5678.", 1),
    ("tel +86 138 1234 5678", "tel +86 138 **** 5678", 1),
    ("tel +86-138-1234-5678", "tel +86-138-****-5678", 1),
    ("tel 138 1234-5678", "tel 138 1234-5678", 0),  # mixed separators: not a written number
    ("tel 1381 234 5678", "tel 1381 234 5678", 0),  # groups in the wrong places
    ("tel 138  1234  5678", "tel 138  1234  5678", 0),
    ("tel 138 1234 56789", "tel 138 1234 56789", 0),  # a longer run
    ("v 2138 1234 5678", "v 2138 1234 5678", 0),
    (f"id {KNOWN[:6]} {KNOWN[6:14]} {KNOWN[14:]}", "id 110105 ******** 002X", 1),
    (f"id {KNOWN[:6]}-{KNOWN[6:14]}-{KNOWN[14:]}", "id 110105-********-002X", 1),
    (f"id {WRONG_CHECK[:6]} {WRONG_CHECK[6:14]} {WRONG_CHECK[14:]}", None, 0),
    (f"id {KNOWN[:6]} {KNOWN[6:14]}-{KNOWN[14:]}", None, 0),
])
def test_mask_bytes_and_text(text, masked, count):
    masked = text if masked is None else masked
    out, found = mask_bytes(text.encode("ascii"))
    assert (out.decode("ascii"), found) == (masked, count)
    assert mask_text(text) == (masked, count)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk", "gb18030"])
def test_chinese_text_around_numbers(encoding):
    text = f"张三，身份证号{KNOWN}，手机号码13812345678；李四电话：+86 15912345678。"
    data = text.encode(encoding)
    out, count = mask_bytes(data)
    assert count == 3
    assert len(out) == len(data)
    assert out.decode(encoding) == ("张三，身份证号110105********002X，手机号码138****5678；"
                                    "李四电话：+86 159****5678。")
    assert mask_text(text) == (out.decode(encoding), 3)


SAMPLE = (
    f"start {KNOWN} 13812345678 7{KNOWN} {KNOWN}7 +8613912345678 008615012345678\n"
    f"中文{NANBU}中文，电话18612345678。{WRONG_CHECK} {'X' * 45}13712345678 {'1' * 60} "
    f"{'9' * 41}x{KNOWN} 1381234567 12345678901234567890 13612345678 电话 138 1234 5678，"
    f"+86-139-1234-5678 {' ' * 50}{KNOWN[:6]} {KNOWN[6:14]} {KNOWN[14:]}"
).encode()


def _streamed(chunks: list[bytes]) -> tuple[bytes, int]:
    masker = Masker()
    out = b"".join(masker.feed(chunk) for chunk in chunks) + masker.finish()
    return out, masker.count


def test_sample_masks_what_it_should():
    out, count = mask_bytes(SAMPLE)
    text = out.decode("utf-8")
    assert count == 12
    assert len(out) == len(SAMPLE)
    for kept in (f"7{KNOWN}", f"{KNOWN}7", WRONG_CHECK, "1" * 60, "1381234567 ", "12345678901234567890"):
        assert kept in text
    for masked in ("start 110105********002X 138****5678", "+86139****5678", "0086150****5678",
                   f"中文511321********{NANBU[-4:]}中文", "186****5678", "X" * 45 + "137****5678",
                   "x110105********002X", "136****5678", "电话 138 **** 5678，", "+86-139-****-5678",
                   " 110105 ******** 002X"):
        assert masked in text


def test_every_split_gives_the_same_output():
    expected = mask_bytes(SAMPLE)
    for cut in range(len(SAMPLE) + 1):
        assert _streamed([SAMPLE[:cut], SAMPLE[cut:]]) == expected, cut


def test_every_two_splits_and_single_bytes_give_the_same_output():
    expected = mask_bytes(SAMPLE)
    assert _streamed([SAMPLE[i:i + 1] for i in range(len(SAMPLE))]) == expected
    for first, second in itertools.combinations(range(0, len(SAMPLE) + 1, 3), 2):
        assert _streamed([SAMPLE[:first], SAMPLE[first:second], SAMPLE[second:]]) == expected, (first, second)


def test_random_data_keeps_length_and_split_invariance():
    rng = random.Random(15)
    alphabet = b"0123456789" * 6 + b"Xx+86   --\n\xe4\xb8\xad"
    for _ in range(200):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
        expected = mask_bytes(data)
        assert len(expected[0]) == len(data)
        cuts = sorted(rng.randrange(0, len(data) + 1) for _ in range(rng.randrange(0, 6)))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert _streamed(chunks) == expected


def test_holds_back_only_a_trailing_run_of_digits_and_separators():
    masker = Masker()
    assert masker.feed(b"call 1381234") == b"call"
    assert masker.feed(b"5678 now") == b" 138****5678 now"
    assert masker.feed(b"9" * 100) == b"9" * 60  # a long run is released, bounded
    assert masker.finish() == b"9" * 40
    assert masker.count == 1


def test_looks_textual():
    assert looks_textual(b"")
    assert looks_textual("身份证号".encode() * 3000)
    assert looks_textual("身份证号".encode("gbk") * 3000)
    assert looks_textual("登录失败".encode()[:-1])  # cut inside the last character
    head = ("a" + "中" * 4000).encode("utf-8")  # the 8 KiB mark falls inside a character
    assert looks_textual(head)
    assert not looks_textual(b"text\0text")
    assert not looks_textual(b"\x7fELF\x02\x01\x01\x00")
    assert not looks_textual(b"abc\x80\xff\xfe")
    assert looks_textual(b"a" * 8192 + b"\0")  # only the first 8 KiB are judged
