/* Injected by t/report-html-browser.sh into a copy of a report, before its
 * Content-Security-Policy (so the policy still governs the report itself):
 * records errors and policy violations, and once the page has loaded
 * writes what the test checks into <pre id="browser-check">. */
(function () {
  var errs = [];
  window.addEventListener('error', function (e) { errs.push('error: ' + (e.message || (e.target && e.target.tagName))); }, true);
  document.addEventListener('securitypolicyviolation', function (e) { errs.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI); });
  var ce = console.error;
  console.error = function () { errs.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); ce.apply(console, arguments); };
  window.addEventListener('load', function () {
    var out = [];
    var imgs = document.querySelectorAll('figure img');
    var drawn = 0;
    imgs.forEach(function (im) {
      var r = im.getBoundingClientRect();
      if (im.complete && im.naturalWidth > 0 && r.width > 50 && r.height > 50) drawn++;
      else errs.push('figure not rendered: ' + im.closest('figure').id);
      if (!im.getAttribute('alt')) errs.push('figure without alt: ' + im.closest('figure').id);
    });
    out.push('figures ' + imgs.length + ' rendered ' + drawn);
    document.querySelectorAll('table[id]').forEach(function (t) {
      out.push('rows ' + t.id + ' ' + t.tBodies[0].rows.length);
    });
    var bad = 0;
    document.querySelectorAll('thead th').forEach(function (th) { if (th.getAttribute('scope') !== 'col') bad++; });
    document.querySelectorAll('tbody th').forEach(function (th) { if (th.getAttribute('scope') !== 'row') bad++; });
    out.push('th-without-scope ' + bad);
    out.push('scripts ' + document.scripts.length);
    out.push('title ' + document.title);
    out.push('h1 ' + document.querySelectorAll('h1').length);
    /* sort a table by a column, twice: ascending, then descending */
    var t = document.querySelector('table.sortable[id$="-table-value_by_n"]');
    if (t) {
      var th = t.tHead.rows[0].cells[2], col = 2;
      var vals = function () { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return parseFloat(r.cells[col].textContent); }); };
      var sorted = function (v, d) { for (var i = 1; i < v.length; i++) if ((v[i] - v[i - 1]) * d < 0) return false; return true; };
      th.querySelector('button').click();
      var up = sorted(vals(), 1) && th.getAttribute('aria-sort') === 'ascending';
      th.querySelector('button').click();
      var down = sorted(vals(), -1) && th.getAttribute('aria-sort') === 'descending';
      out.push('sort ' + (up && down ? 'ok' : 'broken'));
    }
    out.push('wide ' + (document.documentElement.scrollWidth > window.innerWidth + 1 ? 'page scrolls sideways' : 'fits'));
    out.push('errors ' + errs.length);
    errs.forEach(function (e) { out.push('E ' + e); });
    var pre = document.createElement('pre');
    pre.id = 'browser-check';
    pre.textContent = '\n' + out.join('\n') + '\n';
    document.body.appendChild(pre);
  });
})();
