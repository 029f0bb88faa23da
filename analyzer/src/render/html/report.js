(function () {
  'use strict';
  // Data comes from attributes and is only compared, never parsed as markup.
  function byId(i) { return document.getElementById(i); }
  function list(el, attr) { var v = el.getAttribute(attr); return v ? v.split(' ') : []; }
  function clear() {
    document.querySelectorAll('.hl').forEach(function (e) { e.classList.remove('hl'); });
  }
  function reveal(el) {
    for (var d = el.closest('details'); d; d = d.parentElement && d.parentElement.closest('details')) {
      d.open = true;
    }
  }
  function light(from, attr) {
    clear();
    from.classList.add('hl');
    var first = null;
    list(from, attr).forEach(function (i) {
      var el = byId(i);
      if (!el) { return; }
      el.classList.add('hl');
      reveal(el);
      first = first || el;
    });
    if (first) { first.scrollIntoView({ block: 'nearest' }); }
  }
  document.addEventListener('click', function (e) {
    var t = e.target;
    if (!(t instanceof Element)) { return; }
    var f = t.closest('.finding');
    if (f) { light(f, 'data-shapes'); return; }
    var s = t.closest('.sh');
    if (!s) { return; }
    var p = s.getAttribute('data-panel');
    if (p) {
      var d = byId(p);
      if (d) { d.open = true; d.scrollIntoView({ block: 'nearest' }); }
      return;
    }
    light(s, 'data-f');
  });
  document.addEventListener('keydown', function (e) {
    var t = e.target;
    if (e.key === 'Enter' && t instanceof Element && t.classList.contains('finding')) {
      light(t, 'data-shapes');
    }
  });
  var input = byId('filter');
  if (input) {
    input.addEventListener('input', function () {
      var q = input.value.trim().toLowerCase();
      document.querySelectorAll('.finding').forEach(function (f) {
        var text = (f.getAttribute('data-id') + ' ' + f.getAttribute('data-subject')).toLowerCase();
        f.hidden = q !== '' && text.indexOf(q) < 0;
      });
    });
  }
  // For scripts/bench-report: milliseconds from navigation start to the first frame
  // after load (the page parsed, laid out and painted).
  window.addEventListener('load', function () {
    requestAnimationFrame(function () {
      setTimeout(function () {
        document.documentElement.setAttribute('data-ready', String(performance.now()));
      }, 0);
    });
  });
})();
