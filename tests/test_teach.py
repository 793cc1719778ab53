"""teach.num: numbers in rendered prose."""


def test_num_never_rounds_a_near_integer_to_an_exact_looking_one():
    from geffect_lite.teach import num
    assert num(1.0024) == "1.002" and num(100.2) == "100.2" and num(1.00000001) == "1.00"
    assert num(2.0) == "2" and num(0.5) == "0.5" and num(3) == "3" and num(123456.0) == "1.23 × 10^5"
