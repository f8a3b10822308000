# `make bench`: a short load test that prints its summary (included by the Makefile).
# Embedded pipeline in-process, 8 dev images ($OCR_SHARED_DATA/dev/images or
# ../shared/data/dev/images; without them, sample pages the load test draws itself, and it says
# so), /ocr and /pipeline at 1 and 4 clients, CRAFT canvas at most 640 (the default is 1280:
# this is a quick check). Full runs and their figures: monitoring/README.md; accuracy and speed
# beside the peers: `make compare`.
BENCH_ARGS ?= -n 8 -c 1,4 --endpoints ocr,pipeline --canvas-size 640 --threads 2

bench: install  ## Short load test (8 dev or drawn pages, /ocr and /pipeline, C=1 and 4); prints the summary
	$(BIN)/python -m monitoring.loadtest $(BENCH_ARGS)

# `make compare`: this project beside Tesseract and RapidOCR on the dev set (monitoring/compare.py).
# The peers are optional: `make peers` installs them into the venv (Debian's tesseract-ocr binary
# comes from apt-get). RapidOCR goes in without its dependencies because it asks for
# opencv-python, which would clash with the opencv-python-headless every service uses; the
# dependencies it really needs are listed here.
PEERS := pytesseract==0.3.13 pyclipper==1.4.0 shapely==2.2.0
COMPARE_ARGS ?= --threads 2

peers: install  ## Install the compare peers: pytesseract and RapidOCR (apt-get install tesseract-ocr for the binary)
	$(BIN)/python -m pip install -q $(PEERS)
	$(BIN)/python -m pip install -q --no-deps rapidocr_onnxruntime==1.4.4
	@command -v tesseract >/dev/null || echo "tesseract not found: sudo apt-get install tesseract-ocr"

compare: install  ## This project beside Tesseract and RapidOCR on the dev set (bag-F1, det, s/image, memory)
	$(BIN)/python -m monitoring.compare $(COMPARE_ARGS)
