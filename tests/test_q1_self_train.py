"""Q1's self-training round: the union of weak and teacher labels by hand, the one-line error
without a teacher."""

import pytest

from q1_weak_supervision import self_train
from q1_weak_supervision.self_train import union_with_teacher
from tests.test_q1_scripts import conll_dir  # noqa: F401  (the tiny IOB1 folder fixture)


def test_union_with_teacher_keeps_weak_entities_and_adds_the_teachers_others():
    weak = ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "O"]
    teacher = ["B-ORG", "O", "O", "B-ORG", "I-ORG", "I-LOC", "B-MISC"]
    # ORG on 0 overlaps the weak PER: dropped; ORG 3-4 is new: added; the teacher's I-LOC at 5 is
    # read as its own LOC entity by seqeval and overlaps the weak LOC: dropped; MISC 6 added.
    assert union_with_teacher(weak, teacher) == ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "B-LOC", "B-MISC"]
    assert union_with_teacher(["O", "O"], ["O", "O"]) == ["O", "O"]


def test_self_train_without_a_teacher_is_one_line_and_exit_1(conll_dir, tmp_path, capsys):  # noqa: F811
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "train.txt").write_text("Acme B-ORG\n\n")
    (labels / "valid.txt").write_text("Acme B-ORG\n\n")
    with pytest.raises(SystemExit) as exit_info:
        self_train.main(["--conll-dir", str(conll_dir), "--labels-dir", str(labels), "--teacher-run",
                         str(tmp_path / "nothing"), "--wandb-mode", "disabled", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--teacher-run" in err[0]
    assert not (tmp_path / "q1_weak_supervision").exists()
