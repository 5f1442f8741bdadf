"""Which offline sources the training set is built from, and which repositories are held out for evaluation.

Each source is one "repository" for splitting: a PyPI project, an npm package, or a Debian source package
(the Go, Rust and Java standard libraries). Held-out repositories never contribute a training pair.
"""

from __future__ import annotations

# PyPI projects fetched with `pip download --no-deps` (wheels unpacked; only their source files are read).
PYPI_TRAIN: tuple[str, ...] = (
    "numpy", "scipy", "pandas", "scikit-learn", "sympy", "networkx", "matplotlib", "django", "sphinx",
    "docutils", "pygments", "babel", "tornado", "aiohttp", "twisted", "pydantic", "pytest", "hypothesis",
    "statsmodels", "dask", "xarray", "bokeh", "scrapy", "paramiko", "pillow", "tqdm", "more-itertools",
    "toolz", "boltons", "marshmallow", "celery", "kombu", "invoke", "fabric", "mypy", "black", "pylint",
    "astroid", "jedi", "parso", "prompt-toolkit", "ipython", "traitlets", "jupyter-client", "nbformat",
    "transformers", "sentence-transformers", "gensim", "pyyaml", "beautifulsoup4", "html5lib", "mistune",
    "markdown", "pyparsing", "python-dateutil", "pytz", "arrow", "pendulum", "redis", "pymongo", "peewee",
    "lark", "simplejson", "sortedcontainers", "cachetools", "wrapt", "decorator", "sqlparse", "alembic",
    "mako", "pexpect", "psutil", "gunicorn", "bottle", "falcon", "pyramid", "webob", "httpx", "httpcore",
    "h11", "trio", "anyio", "gevent", "dnspython", "ldap3", "pyasn1", "rsa", "oauthlib", "google-auth",
    "botocore", "boto3", "s3transfer", "setuptools", "pip", "virtualenv", "tox", "nox", "poetry-core",
    "packaging", "pluggy", "coverage", "mock", "freezegun", "faker", "factory-boy", "joblib", "numexpr",
    "tables", "h5py", "openpyxl", "xlrd", "pyodbc", "psycopg", "pymysql", "asyncpg", "aiofiles", "uvicorn",
    "starlette", "fastapi", "graphene", "graphql-core", "jsonschema", "cerberus", "voluptuous", "schema",
    "typer", "fire", "docopt", "colorama", "termcolor", "tabulate", "texttable", "prettytable", "humanize",
    "inflect", "nltk", "textblob", "regex", "chardet", "charset-normalizer", "idna", "certifi", "cryptography",
    "pynacl", "bcrypt", "passlib", "itsdangerous", "markupsafe", "bleach", "feedparser", "lxml",
    "xmltodict", "defusedxml", "sqlmodel", "tortoise-orm", "pony", "mongoengine", "elasticsearch",
    "kazoo", "pika", "pyzmq", "websockets", "websocket-client", "python-socketio", "eventlet", "greenlet",
    "zope-interface", "attrs-strict", "cattrs", "pyrsistent", "immutables", "multidict", "yarl", "frozenlist",
    "imageio", "scikit-image", "shapely", "pyproj", "geopy", "folium", "plotly", "seaborn", "altair",
    "pint", "uncertainties", "mpmath", "astropy", "biopython", "rdflib", "pysnmp", "scapy", "netaddr",
    "ipaddress", "pyserial", "pyusb", "sh", "plumbum", "fsspec", "s3fs", "pyarrow", "polars",
    "numba", "llvmlite", "cython", "pybind11", "cffi", "pycparser", "ply", "sly", "hy", "radon", "mccabe",
    "pyflakes", "pycodestyle", "autopep8", "yapf", "isort", "rope", "libcst", "bandit", "safety", "pbr",
    "stevedore", "oslo-config", "oslo-utils", "keystoneauth1", "python-novaclient", "ansible-core",
    "docker", "kubernetes", "troposphere", "azure-core", "google-cloud-storage",
    "luigi", "prefect", "dagster", "great-expectations", "mlflow", "optuna", "hyperopt",
    "keras", "pytorch-lightning",
    "accelerate", "datasets", "tokenizers", "spacy", "thinc", "srsly", "wasabi", "pydub", "mutagen",
    "pyglet", "tkcalendar", "urwid", "npyscreen",
    "textual", "blessed", "asciimatics", "cmd2", "click-plugins", "cliff", "argcomplete", "configobj",
    "configparser", "python-dotenv", "dynaconf", "hydra-core", "omegaconf", "sentry-sdk", "structlog",
    "loguru", "logbook", "eliot", "tenacity", "retrying", "backoff", "ratelimit", "limits", "apscheduler",
    "schedule", "croniter", "dateparser", "parsedatetime", "icalendar", "vobject", "python-slugify",
    "unidecode", "ftfy", "emoji", "pyperclip", "keyring", "secretstorage", "jeepney",
    "pywin32-ctypes", "pathlib2", "scandir", "watchdog", "pyinotify", "send2trash", "filelock", "portalocker",
    "diskcache", "cachelib", "dogpile-cache", "pylibmc", "pymemcache", "pyramid-debugtoolbar", "wtforms",
    "flask-sqlalchemy", "flask-login", "flask-wtf", "flask-restful", "djangorestframework", "django-filter",
    "django-extensions", "channels", "daphne", "autobahn", "txaio", "treq", "klein", "hyperlink",
    "incremental", "constantly", "automat", "service-identity", "pyopenssl", "ecdsa", "pycryptodome",
)

# npm packages fetched with `npm pack` (tarballs unpacked; bundled/minified files are skipped by the miner).
NPM_TRAIN: tuple[str, ...] = (
    "underscore", "async", "bluebird", "q", "ramda", "date-fns", "dayjs", "luxon", "immutable", "rxjs",
    "commander", "yargs", "chalk", "debug", "semver", "glob", "minimatch", "chokidar", "fs-extra", "rimraf",
    "mkdirp", "uuid", "crypto-js", "bn.js", "ethers", "web3-utils", "leaflet", "chart.js", "d3-array",
    "d3-scale", "d3-shape", "d3-selection", "three", "pixi.js", "phaser", "p5", "validator", "joi", "ajv",
    "yup", "mathjs", "decimal.js", "big.js", "numeral", "highlight.js", "marked", "markdown-it", "handlebars",
    "mustache", "ejs", "pug", "less", "postcss", "esprima", "acorn", "escodegen", "estraverse", "babel-core",
    "@babel/core", "@babel/traverse", "@babel/types", "@babel/parser", "@babel/generator", "eslint", "mocha",
    "chai", "sinon", "jasmine-core", "jquery", "backbone", "knockout", "vue", "react", "react-dom", "preact",
    "mongoose", "sequelize", "knex", "pg", "mysql", "redis", "ioredis", "ws", "socket.io", "engine.io",
    "node-fetch", "got", "superagent", "cheerio", "jsdom", "htmlparser2", "parse5", "xml2js", "sax", "yaml",
    "js-yaml", "toml", "ini", "dotenv", "qs", "query-string", "path-to-regexp", "cookie", "body-parser",
    "koa", "hapi", "fastify", "restify", "connect", "serve-static", "send", "mime", "mime-types", "iconv-lite",
    "buffer", "readable-stream", "through2", "pump", "event-stream", "eventemitter3", "graceful-fs", "tar",
    "archiver", "jszip", "pako", "browserify", "webpack", "rollup", "uglify-js", "terser", "clean-css",
    "prettier", "typescript", "core-js", "regenerator-runtime", "bootstrap", "popper.js", "tinymce", "quill",
    "codemirror", "ace-builds", "monaco-editor", "pdfjs-dist", "fabric", "konva", "paper", "matter-js",
    "cannon", "tone", "howler", "hammerjs", "interactjs", "sortablejs", "dragula", "moment-timezone",
    "numbro", "accounting", "currency.js", "lru-cache", "node-cache", "keyv", "nedb", "lowdb", "pouchdb",
    "localforage", "idb", "dexie", "sql.js", "winston", "bunyan", "pino", "log4js", "request", "form-data",
    "formidable", "multer", "busboy", "passport", "jsonwebtoken", "bcryptjs", "node-forge", "elliptic",
    "sjcl", "tweetnacl", "secp256k1", "bignumber.js", "long", "protobufjs", "msgpack-lite", "cbor",
    "graphql", "apollo-server-core", "redux", "mobx", "vuex", "zone.js", "inversify", "typeorm", "yeoman-generator",
    "inquirer", "ora", "listr", "blessed", "vorpal", "shelljs", "execa", "cross-spawn", "node-schedule",
    "cron", "agenda", "bull", "kue", "nodemailer", "twilio", "stripe", "aws-sdk", "googleapis", "firebase",
)

# Debian packages whose files are source trees: `apt-get download`, then `dpkg-deb -x` (nothing is installed).
DEBIAN_TRAIN: tuple[str, ...] = ("golang-1.19-src", "rust-src", "openjdk-17-source")
# Rust crates as Debian ships them (`librust-<crate>-dev`: the crate's source tree), added for the query tower's
# third stage: the standard library alone gave Rust 15k pairs of one style. None is a benchmark repository.
RUST_CRATES: tuple[str, ...] = (
    "hashbrown", "itertools", "regex", "regex-syntax", "serde", "serde-json", "rayon", "rayon-core",
    "crossbeam-channel", "crossbeam-utils", "crossbeam-deque", "crossbeam-epoch", "chrono", "time", "num-traits",
    "num-integer", "num-bigint", "rand", "rand-core", "log", "memchr", "bitflags", "once-cell", "parking-lot",
    "lock-api", "futures-util", "futures-core", "tokio", "tokio-util", "url", "percent-encoding",
    "unicode-segmentation", "aho-corasick", "bstr", "petgraph", "nom", "clap", "syn", "proc-macro2",
    "anyhow", "slab", "tinyvec", "hex", "base64", "byteorder", "half", "uuid", "fixedbitset",
    "ordered-float", "toml", "serde-yaml", "encoding-rs",
)
DEBIAN_TRAIN += tuple(f"librust-{crate}-dev" for crate in RUST_CRATES)

# Held out: never mined for training, used only by the retrieval benchmark (>= 5 packages, 2 languages).
PYPI_HELDOUT: tuple[str, ...] = (
    "requests", "click", "rich", "attrs", "jinja2", "werkzeug", "flask", "urllib3",
)
NPM_HELDOUT: tuple[str, ...] = ("lodash", "moment", "axios", "express")

# Folders inside a package that hold someone else's code (vendored copies would leak held-out repos).
VENDORED_DIRS: frozenset[str] = frozenset(
    {"_vendor", "vendor", "vendored", "_vendored", "extern", "_extern", "third_party", "thirdparty",
     "node_modules", "externals", "bower_components"}
)
