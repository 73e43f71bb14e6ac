"""Known answers: a real two-player search loop on tic-tac-toe positions finds the winning or the
blocking move (game logic here, in the test; the forest only sees children, rewards, values)."""

from __future__ import annotations

import numpy as np
import pytest

from qengine import Forest, SearchConfig

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(board: tuple[int, ...]) -> int:
    for a, b, c in LINES:
        if board[a] and board[a] == board[b] == board[c]:
            return board[a]
    return 0


def legal_moves(board: tuple[int, ...]) -> list[int]:
    return [i for i in range(9) if board[i] == 0]


def rollout(board: tuple[int, ...], player: int, rng: np.random.Generator) -> float:
    """Random play to the end; +1 if ``player`` (to move) wins, -1 if it loses, 0 for a draw."""
    me, board = player, list(board)
    while True:
        moves = [i for i in range(9) if board[i] == 0]
        if not moves:
            return 0.0
        board[moves[rng.integers(len(moves))]] = player
        if winner(tuple(board)):
            return 1.0 if player == me else -1.0
        player = 3 - player


def search(board, player, *, engine, rule, values, mark, simulations=800, leaves_per_ask=2) -> int:
    """Run the search; return the move (cell) of the search's own best root action.

    With exhaustion marking a winning terminal child is exhausted after its first visit (docs
    5.3) and never gains visits; best_action still picks it, since a visited terminal child with
    a higher (exact) Qraw overrides the most visited child (docs 5.6).
    """
    rng = np.random.default_rng(0)
    states = [(tuple(board), player)]  # payload = index into this list
    config = SearchConfig(
        rule=rule, c=1.0, two_player=True, value_min=-1.0, value_max=1.0, mark_exhausted=mark
    )
    forest = Forest(1, config, root_payloads=[0], engine=engine)
    done = 0
    while done < simulations:
        leaves = forest.ask(leaves_per_ask)
        done += len(leaves) + int(leaves.terminal_hits.sum())  # terminal hits are simulations too
        if len(leaves) == 0:
            if leaves.terminal_hits.sum() == 0:
                break  # exhausted root
            continue
        counts, priors, rewards, terminal, payloads, leaf_values = [], [], [], [], [], []
        for payload in leaves.payload.tolist():
            state, mover = states[payload]
            moves = legal_moves(state)
            counts.append(len(moves))
            for move in moves:
                child = list(state)
                child[move] = mover
                child = tuple(child)
                won = winner(child) == mover
                terminal.append(won or not legal_moves(child))
                rewards.append(1.0 if won else 0.0)  # reward on the edge, for the mover
                priors.append(1.0 / len(moves))
                payloads.append(len(states))
                states.append((child, 3 - mover))
            leaf_values.append(rollout(state, mover, rng) if values == "rollout" else 0.0)
        forest.expand(leaves.tree, leaves.node, counts, priors, rewards, terminal, payloads)
        forest.backup(leaves.tree, leaves.node, leaf_values)
    action = forest.best_action(0)
    assert action >= 0
    return legal_moves(tuple(board))[action]


X, O, _ = 1, 2, 0  # noqa: E741 - the board reads better with the game letters
POSITIONS = [
    # (name, board, player to move, the only good move)
    ("X wins on the top row", (X, X, _, O, O, _, _, _, _), X, 2),
    ("X blocks O's top row", (O, O, _, _, _, X, X, _, _), X, 2),
    ("O wins on the middle row", (X, X, _, O, O, _, X, _, _), O, 5),
    ("O blocks the diagonal", (X, _, _, _, X, _, O, _, _), O, 8),
]


@pytest.mark.parametrize("engine", ["native", "reference"])
@pytest.mark.parametrize("rule", ["puct", "uct"])
@pytest.mark.parametrize("values", ["rollout", "zero"])
@pytest.mark.parametrize("mark", [False, True], ids=["unmarked", "marked"])
@pytest.mark.parametrize(
    ("name", "board", "player", "move"), POSITIONS, ids=[p[0] for p in POSITIONS]
)
def test_search_finds_the_move(engine, rule, values, mark, name, board, player, move):
    found = search(board, player, engine=engine, rule=rule, values=values, mark=mark)
    assert found == move, name


def test_game_logic():
    assert winner((X, X, X, _, _, _, _, _, _)) == X
    assert winner((O, _, _, _, O, _, _, _, O)) == O
    assert winner((X, O, X, X, O, O, O, X, X)) == 0
    assert legal_moves((X, _, O, _, _, _, _, _, _)) == [1, 3, 4, 5, 6, 7, 8]
