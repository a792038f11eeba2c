"""Where do the slow float32 epochs go? compute_only.py's training, with each epoch's CPU use beside its time.

    python experiments/pipeline/core_watch.py [--precision float32] [--epochs 16] [--canary]

Per epoch it prints images/s, the CPU seconds this process used per wall second (2.0 = both cores busy),
the machine's idle and steal shares from /proc/stat, and, with --canary, how many loops a busy-looping
process at nice 19 ran per second. The canary only gets a core the training leaves idle (nice 19 weighs
1.5% of nice 0), so it tells an idle core apart from a core the machine took away.
"""
import argparse
import multiprocessing
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def canary(counter) -> None:
    """Busy-loop at the lowest priority, counting loops in shared memory."""
    os.nice(19)
    n = 0
    while True:
        for _ in range(10_000):
            n += 1
        counter.value = n


def cpu_times() -> list[int]:
    """The machine's /proc/stat cpu line: user nice system idle iowait irq softirq steal."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread of this process, keyed by 'name/tid' (names from /proc/self/task/*/comm)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def pin_busiest_threads(before: dict[str, float]) -> None:
    """Pin the threads that used the most CPU since `before` to one core each (os.sched_setaffinity)."""
    cores = sorted(os.sched_getaffinity(0))
    used = {k: v - before.get(k, 0.0) for k, v in thread_cpu().items()}
    busiest = sorted(used, key=used.get, reverse=True)[:len(cores)]
    for core, thread in zip(cores, busiest):
        os.sched_setaffinity(int(thread.split("/")[1]), {core})
    print("pinned", dict(zip(busiest, cores)))


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--canary", action="store_true")
    parser.add_argument("--threads", action="store_true", help="per-thread CPU use per epoch")
    parser.add_argument("--input", default="arrays", choices=["arrays", "dataset", "dataset-no-autotune"],
                        help="numpy arrays to model.fit, or a tf.data pipeline with or without tf.data's autotuning")
    parser.add_argument("--pin", action="store_true",
                        help="after epoch 1, pin the busiest threads one to a core (the rest may run anywhere)")
    args = parser.parse_args()

    counter = multiprocessing.Value("q", 0, lock=False)
    if args.canary:
        multiprocessing.Process(target=canary, args=(counter,), daemon=True).start()

    from imgexp.tensorflow_runtime import import_tensorflow

    import_tensorflow()
    import keras
    import numpy as np

    from imgexp.models import build_model

    rows = []

    class EpochWatch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), process_cpu(), cpu_times(), counter.value, thread_cpu())

        def on_epoch_end(self, epoch, logs=None):
            wall0, cpu0, stat0, loops0, threads0 = self.start
            if args.pin and epoch == 0:
                pin_busiest_threads(threads0)
            wall = time.perf_counter() - wall0
            delta = [b - a for a, b in zip(stat0, cpu_times())]
            rows.append({
                "ended": time.time(),
                "img_s": 320 / wall,
                "cpu_per_s": (process_cpu() - cpu0) / wall,
                "idle": (delta[3] + delta[4]) / max(sum(delta), 1),
                "steal": delta[7] / max(sum(delta), 1),
                "canary_loops_per_s": (counter.value - loops0) / wall,
                "threads": {k: (v - threads0.get(k, 0.0)) / wall for k, v in thread_cpu().items()},
            })

    keras.mixed_precision.set_global_policy(args.precision)
    keras.utils.set_random_seed(0)
    model = build_model("cnn", (150, 150), 2)
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=False)
    x = np.random.default_rng(0).integers(0, 256, (320, 150, 150, 3)).astype("float32")
    y = np.zeros(320, "int32")
    if args.input == "arrays":  # Keras builds its own tf.data pipeline over the arrays (with AUTOTUNE prefetch)
        model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=[EpochWatch()])
    else:
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(320, seed=0).batch(32)
        options = tf.data.Options()
        if args.input == "dataset-no-autotune":
            options.autotune.enabled = False  # no tf.data model thread, fixed prefetch buffer
            data = data.prefetch(2)
        else:
            data = data.prefetch(tf.data.AUTOTUNE)
        model.fit(data.with_options(options), epochs=args.epochs, verbose=0, callbacks=[EpochWatch()])

    print(f"{'epoch':>5} {'img/s':>6} {'cpu/s':>6} {'idle':>5} {'steal':>5} {'canary/s':>10} {'ended (unix time)':>18}")
    for i, r in enumerate(rows[1:], start=2):
        print(f"{i:>5} {r['img_s']:>6.0f} {r['cpu_per_s']:>6.2f} {r['idle']:>5.2f} {r['steal']:>5.2f} "
              f"{r['canary_loops_per_s']:>10.0f} {r['ended']:>18.1f}")
    speeds = [r["img_s"] for r in rows[1:]]
    if args.threads:
        busy = sorted({k for r in rows[1:] for k, v in r["threads"].items() if v > 0.05})
        print("CPU seconds per wall second, per thread (threads above 0.05 in some epoch):")
        print(f"{'epoch':>5} {'img/s':>6} " + " ".join(f"{k[-18:]:>18}" for k in busy))
        for i, r in enumerate(rows[1:], start=2):
            print(f"{i:>5} {r['img_s']:>6.0f} " + " ".join(f"{r['threads'].get(k, 0):>18.2f}" for k in busy))
    print(args.precision, "median img/s", round(statistics.median(speeds)),
          "max/median epoch time", round(statistics.median(speeds) / min(speeds), 2))


if __name__ == "__main__":
    main()
