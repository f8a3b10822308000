# `make bench`: a short load test that prints its summary (included by the Makefile).
# Embedded pipeline in-process, 8 dev images ($OCR_SHARED_DATA/dev/images or
# ../shared/data/dev/images; without them, sample pages the load test draws itself, and it says
# so), /ocr and /pipeline at 1 and 4 clients, CRAFT canvas 640 (the service default is 1280; a
# page there takes 7-11 s on 2 cores, too slow for a quick check). Full runs and their figures:
# monitoring/README.md.
BENCH_ARGS ?= -n 8 -c 1,4 --endpoints ocr,pipeline --canvas-size 640 --threads 2

bench: install  ## Short load test (8 dev or drawn pages, /ocr and /pipeline, C=1 and 4); prints the summary
	$(BIN)/python -m monitoring.loadtest $(BENCH_ARGS)
