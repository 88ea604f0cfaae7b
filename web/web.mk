# The viewer's front end (included by the Makefile): uPlot from npm, copied where it is served.
# web/package.json pins it, web/package-lock.json locks it; `npm ci` installs exactly that.
WEB_VENDOR := harness/viewer/static/vendor
TEST_DEPS += web-assets
RUN_DEPS += web-assets

.PHONY: web-assets web-clean

web-assets: $(WEB_VENDOR)/.built

$(WEB_VENDOR)/.built: web/package.json web/package-lock.json web/build.py
	$(PYTHON) web/build.py

web-clean:
	rm -rf web/node_modules $(WEB_VENDOR)

clean: web-clean
