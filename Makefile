# make demo: set up, convert the bundled shapes Mask R-CNN to Caffe2 and evaluate PyTorch vs Caffe2.
# make test: set up and run the whole test suite (what CI runs).
PYTHON ?= python3
APT_PACKAGES = graphviz protobuf-compiler libprotobuf-dev cmake g++ libopencv-dev libgflags-dev libgoogle-glog-dev
OUT ?= output/shapes_caffe2

.PHONY: setup apt pip demo test cpp bench

setup: apt pip

apt:
	@if command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "apt-get install $$missing"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	  fi; \
	fi

pip:
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .

demo: setup
	rm -rf $(OUT)
	$(PYTHON) tools/caffe2_converter.py --config-file configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml \
	  --output $(OUT) --run-eval MODEL.WEIGHTS models/mask_rcnn_R_18_FPN_shapes.pkl MODEL.DEVICE cpu

cpp: apt
	cmake -S cpp -B cpp/build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(PYTHON)
	cmake --build cpp/build -j2

test: setup cpp
	$(PYTHON) -m pytest -n 2 --dist load tests

bench: setup
	for b in benchmarks/*.py; do $(PYTHON) $$b || exit 1; done
