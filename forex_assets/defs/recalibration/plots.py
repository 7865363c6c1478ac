import matplotlib.pyplot as plt
import pandas as pd


def leaderboard_figure(board: pd.DataFrame, horizon: str):
    complete = board[board["state"] == "COMPLETE"].head(20)
    fig, ax = plt.subplots(figsize=(7, max(2.0, 0.3 * len(complete) + 1)))
    labels = [label.split("|", 1)[-1] for label in complete["label"]]
    ax.barh(labels[::-1], complete["rmse_clp"].to_numpy()[::-1], color="tab:blue")
    ax.set_xlabel("search-window RMSE (CLP)")
    ax.set_title(f"{horizon}: configurations, best at the top")
    ax.grid(alpha=0.3, axis="x")
    return fig
