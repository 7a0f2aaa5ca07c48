from viz.position_kinds import kind_groups, parse_position, position_kind, run_order


def test_parse_position_every_label_kind():
    assert parse_position("q_12") == ("question", 12)
    assert parse_position("q[-3]") == ("question", -3)
    assert parse_position("bot") == ("bot", 0)
    assert parse_position("latent_5") == ("latent", 5)
    assert parse_position("eot") == ("eot", 0)
    assert parse_position("resp_10") == ("response", 10)
    assert parse_position("tok_7") == ("token", 7)
    assert parse_position("prompt[-2]") == ("token", -2)
    assert parse_position("last") == ("last", 0)
    assert position_kind("latent_x") == "other"
    assert position_kind("<script>") == "other"


def test_run_order_codi_and_plain():
    labels = [
        "resp_1",
        "latent_10",
        "eot",
        "q[-1]",
        "latent_2",
        "bot",
        "q_3",
        "q[-2]",
        "resp_0",
        "weird",
        "q_0",
    ]
    assert run_order(labels) == [
        "q_0",
        "q_3",
        "q[-2]",
        "q[-1]",
        "bot",
        "latent_2",
        "latent_10",
        "eot",
        "resp_0",
        "resp_1",
        "weird",
    ]
    assert run_order(["last", "tok_10", "prompt[-1]", "tok_2", "prompt[-3]"]) == [
        "tok_2",
        "tok_10",
        "prompt[-3]",
        "prompt[-1]",
        "last",
    ]


def test_kind_groups():
    labels = ["q[-2]", "q[-1]", "bot", "latent_0", "latent_1", "eot", "resp_0"]
    assert kind_groups(labels) == [
        ("question", 0, 1),
        ("bot", 2, 2),
        ("latent", 3, 4),
        ("eot", 5, 5),
        ("response", 6, 6),
    ]
