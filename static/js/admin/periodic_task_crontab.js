// django-celery-beat's periodic task form: shows the chosen crontab in words under the field.
// Its own template does this in an inline script, which our Content-Security-Policy blocks
// (templates/admin/djcelery/change_periodictask_form.html loads this file instead).
'use strict';
(function () {
    const $ = django.jQuery;
    const data = document.getElementById('readable-crontabs');
    if (!data) {
        return;
    }
    const readableCrontabs = JSON.parse(data.textContent);
    const help = $('.field-crontab .help');
    const originalHelp = help.contents().clone();

    $('.field-crontab_translation').hide();
    $('.field-crontab').change(function () {
        const readable = readableCrontabs[$('#id_crontab').val()];
        help.empty().append(originalHelp.clone(), $('<br>'));
        // Text, not HTML: the description comes from data an admin typed.
        help.append(document.createTextNode('Translation: ' + (readable || '')));
    });
})();
