"""Placeholder until the models CLI lands: only ``check-install``."""
import sys
from importlib import metadata


def _check_install() -> int:
    dists = sorted({d.metadata["Name"] for d in metadata.distributions()
                    if (d.metadata["Name"] or "").lower().startswith("onnxruntime")})
    if len(dists) != 1:
        print(f"expected exactly one onnxruntime distribution, found {dists}", file=sys.stderr)
        return 1
    print(f"onnxruntime distribution: {dists[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(_check_install() if sys.argv[1:2] == ["check-install"] else 2)
