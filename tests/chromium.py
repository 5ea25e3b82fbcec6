"""Headless Chromium driven over the Chrome DevTools Protocol (no selenium).

`HeadlessChromium` starts `chromium --headless --remote-debugging-port=0`
with a fresh profile, connects to its page target with `websocket-client` and
records, while a page loads, the console errors, uncaught exceptions and
every network request.
"""

import base64
import json
import pathlib
import shutil
import subprocess
import tempfile
import time
import urllib.request
from typing import Any, Dict, List, Optional

import pytest
import websocket

CHROMIUM_BINARIES = ('chromium', 'chromium-browser', 'google-chrome')
CHROMIUM_FLAGS = ('--headless', '--no-sandbox', '--disable-gpu',
                  '--disable-background-networking',
                  '--disable-component-update', '--disable-sync',
                  '--no-first-run', '--disable-extensions',
                  '--disable-default-apps', '--mute-audio')


def find_chromium() -> Optional[str]:
  """The Chromium executable on PATH, if any (`make test-deps` installs it;
  the tests never install system packages themselves)."""
  for name in CHROMIUM_BINARIES:
    path = shutil.which(name)
    if path:
      return path
  return None


def require_chromium() -> str:
  """The Chromium executable; fails the calling test, naming the set-up step
  that installs it, when there is none."""
  executable = find_chromium()
  if executable is None:
    pytest.fail(f'Chromium ({" or ".join(CHROMIUM_BINARIES)}) is not on the '
                'PATH. It is a test dependency that the set-up step '
                '`make test-deps` installs (`make test`, and so `.ci/run`, '
                'runs it first); run `make test-deps`.', pytrace=False)
  return executable


class PageLoad:
  """What happened while one page loaded."""

  def __init__(self):
    self.console_errors: List[str] = []
    self.requests: List[str] = []


class HeadlessChromium:
  """A headless Chromium with one page, driven over DevTools.

  Use as a context manager; `load(path)` opens a local file and waits for
  its load event.
  """

  def __init__(self, executable: str, window_size=(1280, 900),
               start_timeout: float = 60.0):
    self._executable = executable
    self._window_size = window_size
    self._start_timeout = start_timeout
    self._profile = tempfile.mkdtemp(prefix='chromium-profile-')
    self._process: Optional[subprocess.Popen] = None
    self._socket: Optional[websocket.WebSocket] = None
    self._next_id = 0
    self._events: List[Dict[str, Any]] = []

  def __enter__(self) -> 'HeadlessChromium':
    width, height = self._window_size
    self._process = subprocess.Popen(
        [self._executable, *CHROMIUM_FLAGS, f'--user-data-dir={self._profile}',
         '--remote-debugging-port=0', f'--window-size={width},{height}',
         'about:blank'],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = self._wait_for_port()
    with urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list',
                                timeout=10) as response:
      targets = json.load(response)
    page = next(target for target in targets if target['type'] == 'page')
    self._socket = websocket.create_connection(
        page['webSocketDebuggerUrl'], timeout=60, suppress_origin=True)
    for domain in ('Page', 'Runtime', 'Log', 'Network'):
      self.send(f'{domain}.enable')
    return self

  def __exit__(self, *unused_exc_info) -> None:
    if self._socket is not None:
      self._socket.close()
    if self._process is not None:
      self._process.terminate()
      try:
        self._process.wait(timeout=20)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
    shutil.rmtree(self._profile, ignore_errors=True)

  def _wait_for_port(self) -> int:
    """The DevTools port Chromium chose (it writes DevToolsActivePort)."""
    port_file = pathlib.Path(self._profile) / 'DevToolsActivePort'
    deadline = time.monotonic() + self._start_timeout
    while time.monotonic() < deadline:
      if self._process.poll() is not None:
        raise RuntimeError('Chromium exited at start: '
                           + self._process.stderr.read().decode()[-2000:])
      if port_file.exists():
        lines = port_file.read_text().split()
        if lines:
          return int(lines[0])
      time.sleep(0.2)
    raise TimeoutError(f'Chromium wrote no {port_file} in '
                       f'{self._start_timeout} s.')

  def send(self, method: str, **params: Any) -> Dict[str, Any]:
    """Calls a DevTools method and returns its result; events that arrive
    meanwhile are kept for `load`."""
    self._next_id += 1
    call_id = self._next_id
    self._socket.send(json.dumps({'id': call_id, 'method': method,
                                  'params': params}))
    while True:
      message = json.loads(self._socket.recv())
      if message.get('id') == call_id:
        if 'error' in message:
          raise RuntimeError(f'{method} failed: {message["error"]}')
        return message.get('result', {})
      if 'method' in message:
        self._events.append(message)

  def _wait_for_event(self, method: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(event['method'] == method for event in self._events):
      if time.monotonic() > deadline:
        raise TimeoutError(f'No {method} within {timeout} s.')
      self._socket.settimeout(max(0.1, deadline - time.monotonic()))
      message = json.loads(self._socket.recv())
      if 'method' in message:
        self._events.append(message)

  def load(self, path: pathlib.Path, timeout: float = 60.0,
           settle_seconds: float = 1.0) -> PageLoad:
    """Opens a local file; returns the console errors and requests seen
    until its load event plus `settle_seconds`."""
    self._events.clear()
    self.send('Page.navigate', url=pathlib.Path(path).resolve().as_uri())
    self._wait_for_event('Page.loadEventFired', timeout)
    time.sleep(settle_seconds)
    self.send('Runtime.evaluate', expression='1')  # Collects late events.
    result = PageLoad()
    for event in self._events:
      method, params = event['method'], event.get('params', {})
      if method == 'Runtime.consoleAPICalled' and params.get('type') in (
          'error', 'assert'):
        result.console_errors.append(' '.join(
            str(arg.get('value', arg.get('description', '')))
            for arg in params.get('args', [])))
      elif method == 'Runtime.exceptionThrown':
        details = params.get('exceptionDetails', {})
        result.console_errors.append(
            details.get('exception', {}).get('description')
            or details.get('text', 'exception'))
      elif method == 'Log.entryAdded' and params['entry']['level'] == 'error':
        result.console_errors.append(params['entry']['text'])
      elif method == 'Network.requestWillBeSent':
        result.requests.append(params['request']['url'])
    return result

  def evaluate(self, expression: str) -> Any:
    """The JSON value of a JavaScript expression in the page."""
    result = self.send('Runtime.evaluate', expression=expression,
                       returnByValue=True)
    if 'exceptionDetails' in result:
      raise RuntimeError(f'{expression} threw: {result["exceptionDetails"]}')
    return result['result'].get('value')

  def screenshot(self, path: pathlib.Path, max_height: int = 16000) -> None:
    """Saves a PNG of the whole page (up to `max_height` CSS pixels)."""
    metrics = self.send('Page.getLayoutMetrics')
    size = metrics.get('cssContentSize') or metrics['contentSize']
    width = self._window_size[0]
    height = min(int(size['height']) + 1, max_height)
    self.send('Emulation.setDeviceMetricsOverride', width=width,
              height=height, deviceScaleFactor=1, mobile=False)
    data = self.send('Page.captureScreenshot', format='png')['data']
    pathlib.Path(path).write_bytes(base64.b64decode(data))
